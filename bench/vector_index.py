"""Nearest labelled images and near-duplicate groups: today's code against vector indexes.

Synthetic float16 pools shaped like pooled ReLU features (all-positive rows around 1,000
cluster centres, pairwise cosine ~0.65-0.85) with planted near-duplicates: 1 % of the rows
are copies of another row turned by an angle whose cosine is drawn from [0.955, 0.995].
Each measurement runs in its own process, so memory is that method's alone: the peak of
anonymous resident memory (the memory-mapped pool's pages are not counted) above what the
process held before it started. Wall time and CPU time (all threads) are both printed: on
a shared machine the wall time of the same work varies several-fold with the load.

Two tasks, as the app has them:

* **nearest labelled** (``why this image``): 10 % of the rows are labelled; build an index
  over them, then 300 single queries (one thread, as a web worker) for the 5 nearest.
  Recall@5 is against the exact float32 answer. Baseline: today's code (``explain``: the
  labelled rows gathered into a float32 unit matrix, cached; a matrix-vector product).
  Then exact scans (faiss ``IndexFlatIP``, usearch's exact search) and HNSW graphs
  (faiss ``IndexHNSWSQ`` fp16, usearch, hnswlib; M=16, efConstruction=40, efSearch=32).
* **near-duplicates** over the whole pool at cosine >= 0.95. Baseline: today's LSH
  (``labeler.learning.duplicates``), which groups every row again whenever rows arrive.
  faiss IVF (``faiss-ivf``: ``IndexIVFFlat``; ``faiss-ivf-sq``: rows stored as float16 by
  ``IndexIVFScalarQuantizer``): inner product of unit rows, 4 * sqrt(N) cells from
  k-means on a sample, nprobe 1, ``range_search`` at the threshold; the last 1 % of rows
  are added and looked up alone ("+1 % rows"). HNSW (faiss, usearch, hnswlib): build,
  then each row's 8 nearest. Recall is the share of planted pairs whose stored cosine is
  >= 0.95 that end up in one group; every candidate pair is checked exactly, so no method
  groups a wrong pair.

Needs faiss-cpu, usearch and hnswlib installed; the app uses none of them (issue 15: no
library index built within 2x of the LSH's time; the HNSW builds cost ~70x, faiss IVF
~25x in CPU time at 100,000 rows and more at 1,000,000; see docs/architecture.md).

    nice -n 10 python bench/vector_index.py [--rows 100000 1000000] [--methods ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

DIM = 1280
THRESHOLD = 0.95
LABELLED_SHARE = 0.10
QUERIES = 300
K = 5
DATA = Path(os.environ.get("BENCH_DATA", "/tmp/labeler-bench-vector-index"))
LABELLED_METHODS = ["today-labelled", "faiss-flat", "usearch-flat", "faiss-hnsw",
                    "usearch-hnsw", "hnswlib-hnsw"]
DUPLICATE_METHODS = ["today-lsh", "faiss-ivf", "faiss-ivf-sq", "faiss-hnsw-dups", "usearch-dups",
                     "hnswlib-dups"]
CHILD_TIMEOUT_S = 1800


# --- data ---------------------------------------------------------------------------------


def _paths(rows: int) -> tuple[Path, Path]:
    return DATA / f"pool-{rows}.f16", DATA / f"pool-{rows}.pairs.npy"


def make_pool(rows: int, seed: int = 0) -> None:
    """Write the pool (float16, row-major) and its planted pairs, once per size."""
    pool_path, pairs_path = _paths(rows)
    if pool_path.exists() and pairs_path.exists():
        return
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, DIM), dtype=np.float32)
    pool = np.lib.format.open_memmap(DATA / "tmp.npy", mode="w+", dtype=np.float16,
                                     shape=(rows, DIM))
    for start in range(0, rows, 20_000):
        n = min(20_000, rows - start)
        block = centres[rng.integers(0, len(centres), n)]
        block += 0.7 * rng.standard_normal((n, DIM), dtype=np.float32)
        pool[start : start + n] = np.abs(block)
    n_copies = rows // 100
    copies = rng.choice(rows, size=2 * n_copies, replace=False)
    sources, targets = copies[:n_copies], copies[n_copies:]
    for start in range(0, n_copies, 10_000):
        s, t = sources[start : start + 10_000], targets[start : start + 10_000]
        x = pool[s].astype(np.float32)
        noise = rng.standard_normal(x.shape, dtype=np.float32)
        noise -= (np.einsum("ij,ij->i", noise, x) / np.einsum("ij,ij->i", x, x))[:, None] * x
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        cosine = rng.uniform(0.955, 0.995, len(s)).astype(np.float32)
        turn = np.sqrt(1 / cosine**2 - 1) * np.linalg.norm(x, axis=1)
        pool[t] = x + turn[:, None] * noise
    pool.flush()
    with open(pool_path, "wb") as out:
        for start in range(0, rows, 50_000):
            out.write(np.ascontiguousarray(pool[start : start + 50_000]).tobytes())
    del pool
    (DATA / "tmp.npy").unlink()
    np.save(pairs_path, np.stack([sources, targets], axis=1))


def load_pool(rows: int) -> tuple[np.ndarray, np.ndarray]:
    pool_path, pairs_path = _paths(rows)
    return (np.memmap(pool_path, dtype=np.float16, mode="r", shape=(rows, DIM)),
            np.load(pairs_path))


# --- measuring ----------------------------------------------------------------------------


class AnonPeak:
    """Peak anonymous resident memory (MiB) of this process above where it started."""

    def __init__(self) -> None:
        self.start = self._anon()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    @staticmethod
    def _anon() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._anon())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._anon())
        return self.peak - self.start


def _unit32(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _latencies(search, queries: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    found, times = [], []
    for query in queries:
        started = time.perf_counter()
        found.append(np.asarray(search(query)))
        times.append(time.perf_counter() - started)
    return found, np.array(times) * 1000


def run_labelled(method: str, rows: int) -> dict:
    pool, _ = load_pool(rows)
    rng = np.random.default_rng(1)
    labelled = np.sort(rng.choice(rows, int(rows * LABELLED_SHARE), replace=False))
    queries = _unit32(pool[rng.choice(rows, QUERIES, replace=False)])
    memory = AnonPeak()
    started = time.perf_counter()
    cpu_started = time.process_time()
    if method == "today-labelled":
        # explain._labelled_index: gather, float32, unit length; _nearest_labelled: product.
        unit = _unit32(pool[labelled])

        def search(query: np.ndarray) -> np.ndarray:
            scores = unit @ query
            top = np.argpartition(-scores, 32)[:32]
            return labelled[top[np.argsort(-scores[top])][:K]]
    elif method == "faiss-flat":
        import faiss

        index = faiss.IndexFlatIP(DIM)
        index.add(_unit32(pool[labelled]))

        def search(query: np.ndarray) -> np.ndarray:
            return labelled[index.search(query[None], K)[1][0]]
    elif method == "faiss-hnsw":
        index = _faiss_hnsw()
        for start in range(0, len(labelled), 20_000):
            index.add(_unit32(pool[labelled[start : start + 20_000]]))

        def search(query: np.ndarray) -> np.ndarray:
            return labelled[index.search(query[None], K)[1][0]]
    elif method == "usearch-flat":
        from usearch.index import search as usearch_flat

        matrix = np.asarray(pool[labelled])

        def search(query: np.ndarray) -> np.ndarray:
            found = usearch_flat(matrix, query.astype(np.float16), K, "cos", exact=True,
                                 threads=1)
            return labelled[np.asarray(found.keys, dtype=np.int64)]
    elif method == "usearch-hnsw":
        from usearch.index import Index

        index = Index(ndim=DIM, metric="cos", dtype="f16", connectivity=16,
                      expansion_add=40, expansion_search=32)
        index.add(labelled, np.asarray(pool[labelled]), threads=2)

        def search(query: np.ndarray) -> np.ndarray:
            return np.asarray(index.search(query, K, threads=1).keys, dtype=np.int64)
    elif method == "hnswlib-hnsw":
        import hnswlib

        index = hnswlib.Index(space="ip", dim=DIM)
        index.init_index(max_elements=len(labelled), M=16, ef_construction=40)
        for start in range(0, len(labelled), 50_000):
            chunk = labelled[start : start + 50_000]
            index.add_items(_unit32(pool[chunk]), chunk, num_threads=2)
        index.set_ef(32)

        def search(query: np.ndarray) -> np.ndarray:
            return index.knn_query(query[None], K, num_threads=1)[0][0]
    else:
        raise SystemExit(f"unknown method {method}")
    build_s = time.perf_counter() - started
    build_cpu_s = time.process_time() - cpu_started
    # One BLAS/OpenMP thread while answering, as in a web worker (labeler serve).
    with threadpool_limits(1):
        found, ms = _latencies(search, queries)
    memory_mib = memory.stop()
    truth_unit = _unit32(pool[labelled])
    truth = [set(labelled[np.argsort(-(truth_unit @ q))[:K]].tolist()) for q in queries]
    recall = np.mean([len(truth[i] & set(found[i].tolist())) / K for i in range(QUERIES)])
    return {"task": "nearest labelled", "method": method, "rows": rows,
            "indexed": len(labelled), "build_s": build_s, "build_cpu_s": build_cpu_s,
            "memory_mib": memory_mib,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "recall": float(recall)}


def _planted_recall(pool: np.ndarray, pairs: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    a, b = _unit32(pool[pairs[:, 0]]), _unit32(pool[pairs[:, 1]])
    real = pairs[np.einsum("ij,ij->i", a, b) >= THRESHOLD]
    together = (groups[real[:, 0]] >= 0) & (groups[real[:, 0]] == groups[real[:, 1]])
    return float(together.mean()), len(real)


def _knn_pairs(knn, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, neighbour) pairs near the threshold from a library's batch k-NN search."""
    found_a, found_b = [], []
    for start in range(0, rows, 20_000):
        found, similarity = knn(start, min(rows, start + 20_000))
        own = np.arange(start, start + len(found))[:, None].repeat(found.shape[1], 1)
        keep = (similarity >= THRESHOLD - 0.01) & (found >= 0)
        found_a.append(own[keep])
        found_b.append(found[keep])
    return np.concatenate(found_a), np.concatenate(found_b)


def _ivf_pairs(pool: np.ndarray, rows: int, fp16: bool) -> tuple[dict, np.ndarray, np.ndarray]:
    """faiss IVF over unit rows: k-means cells, each row's cell, range search at the threshold.

    nlist = 4 * sqrt(rows) cells trained by k-means on 16 rows per cell (5 iterations);
    nprobe = 1: a row is compared with the rows of its own cell only. The queries go in
    cell order so that a cell's rows stay in cache. The last 1 % of rows arrive later:
    they are assigned, added and looked up alone ("+1 % rows").
    """
    import faiss

    nlist = max(1, int(4 * np.sqrt(rows)))
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    sample = _unit32(pool[np.sort(rng.choice(rows, min(rows, 16 * nlist), replace=False))])
    quantizer = faiss.IndexFlatIP(DIM)
    if fp16:
        index = faiss.IndexIVFScalarQuantizer(quantizer, DIM, nlist, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFFlat(quantizer, DIM, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 5
    index.cp.max_points_per_centroid = 16
    index.train(sample)
    cells = np.empty(rows, np.int64)
    closeness = np.empty(rows, np.float32)

    def add(start: int, stop: int) -> None:
        for block in range(start, stop, 20_000):
            unit = _unit32(pool[block : min(stop, block + 20_000)])
            near, cell = quantizer.search(unit, 1)
            cells[block : block + len(unit)] = cell[:, 0]
            closeness[block : block + len(unit)] = near[:, 0]
            # swig_ptr keeps no reference: every array handed over must be held by a name.
            ids = np.arange(block, block + len(unit), dtype=np.int64)
            assigned = np.ascontiguousarray(cell[:, 0])
            index.add_core(len(unit), faiss.swig_ptr(unit), faiss.swig_ptr(ids),
                           faiss.swig_ptr(assigned))

    def look_up(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        order = start + np.argsort(cells[start:stop], kind="stable")
        found_a, found_b = [], []
        for block in range(0, len(order), 20_000):
            chosen = np.sort(order[block : block + 20_000])  # memory-map order to read
            chosen = chosen[np.argsort(cells[chosen], kind="stable")]
            lims, _, found = index.range_search_preassigned(
                _unit32(pool[chosen]), THRESHOLD - 0.01, cells[chosen][:, None],
                closeness[chosen][:, None])
            found_a.append(np.repeat(chosen, np.diff(lims).astype(np.int64)))
            found_b.append(found.astype(np.int64))
        return np.concatenate(found_a), np.concatenate(found_b)

    first = rows - rows // 100
    add(0, first)
    build_s = time.perf_counter() - started
    a, b = look_up(0, first)
    update_started = time.perf_counter()
    add(first, rows)
    new_a, new_b = look_up(first, rows)
    a, b = verified_pairs_of(pool, np.concatenate([a, new_a]), np.concatenate([b, new_b]))
    update_s = time.perf_counter() - update_started
    sizes = np.bincount(cells, minlength=nlist)
    return {"build_s": build_s, "update_s": update_s, "nlist": nlist,
            "largest_cell": int(sizes.max())}, a, b


def verified_pairs_of(pool: np.ndarray, a: np.ndarray,
                      b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (a, b), a != b, whose stored rows have cosine >= THRESHOLD."""
    keep = np.zeros(len(a), dtype=bool)
    for start in range(0, len(a), 8_192):
        left = _unit32(pool[a[start : start + 8_192]])
        right = _unit32(pool[b[start : start + 8_192]])
        keep[start : start + len(left)] = np.einsum("ij,ij->i", left, right) >= THRESHOLD
    keep &= a != b
    return a[keep], b[keep]


def groups_from_pairs(n_rows: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of the pairs: a group number per row, -1 for rows alone."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n_rows, n_rows))
    component = connected_components(graph, directed=False)[1]
    sizes = np.bincount(component)
    return np.where(sizes[component] >= 2, component, -1)


def _faiss_hnsw():
    """faiss's HNSW graph of float16 rows (M=16, efConstruction=40, efSearch=32)."""
    import faiss

    index = faiss.IndexHNSWSQ(DIM, faiss.ScalarQuantizer.QT_fp16, 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 40
    index.hnsw.efSearch = 32
    return index


def run_duplicates(method: str, rows: int) -> dict:
    pool, pairs = load_pool(rows)
    memory = AnonPeak()
    started = time.perf_counter()
    cpu_started = time.process_time()
    build_s = update_s = None
    extra: dict = {}
    if method in ("faiss-ivf", "faiss-ivf-sq"):
        extra, a, b = _ivf_pairs(pool, rows, fp16=method == "faiss-ivf-sq")
        build_s, update_s = extra.pop("build_s"), extra.pop("update_s")
        groups = groups_from_pairs(rows, a, b)
    elif method == "today-lsh":
        from labeler.learning.duplicates import near_duplicate_groups

        groups = near_duplicate_groups(pool, THRESHOLD)
        update_s = time.perf_counter() - started  # new rows: group everything again
    else:
        if method == "faiss-hnsw-dups":
            index = _faiss_hnsw()
            for start in range(0, rows, 20_000):
                index.add(_unit32(pool[start : start + 20_000]))
            build_s = time.perf_counter() - started

            def knn(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
                similarity, found = index.search(_unit32(pool[start:stop]), 9)
                return found.astype(np.int64), similarity

            a, b = _knn_pairs(knn, rows)
        elif method == "usearch-dups":
            from usearch.index import Index

            index = Index(ndim=DIM, metric="cos", dtype="f16", connectivity=16,
                          expansion_add=40, expansion_search=32)
            for start in range(0, rows, 20_000):
                block = np.asarray(pool[start : start + 20_000])
                index.add(np.arange(start, start + len(block)), block, threads=2)
            build_s = time.perf_counter() - started

            def knn(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
                found = index.search(np.asarray(pool[start:stop]), 9, threads=2)
                return (np.asarray(found.keys, dtype=np.int64).reshape(stop - start, -1),
                        1 - np.asarray(found.distances).reshape(stop - start, -1))

            a, b = _knn_pairs(knn, rows)
        elif method == "hnswlib-dups":
            import hnswlib

            index = hnswlib.Index(space="ip", dim=DIM)
            index.init_index(max_elements=rows, M=16, ef_construction=40)
            for start in range(0, rows, 20_000):
                block = _unit32(pool[start : start + 20_000])
                index.add_items(block, np.arange(start, start + len(block)), num_threads=2)
            index.set_ef(32)
            build_s = time.perf_counter() - started

            def knn(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
                found, distance = index.knn_query(_unit32(pool[start:stop]), 9, num_threads=2)
                return found.astype(np.int64), 1 - distance

            a, b = _knn_pairs(knn, rows)
        else:
            raise SystemExit(f"unknown method {method}")
        a, b = verified_pairs_of(pool, a, b)
        groups = groups_from_pairs(rows, a, b)
    total_s = time.perf_counter() - started
    cpu_s = time.process_time() - cpu_started
    memory_mib = memory.stop()
    recall, planted = _planted_recall(pool, pairs, groups)
    return {"task": "near-duplicates", "method": method, "rows": rows, "build_s": build_s,
            "total_s": total_s, "cpu_s": cpu_s, **extra, "update_s": update_s,
            "memory_mib": memory_mib, "recall": recall,
            "planted": planted, "groups": len(np.unique(groups[groups >= 0]))}


# --- driver -------------------------------------------------------------------------------


def _print(result: dict) -> None:
    if "error" in result:
        print(f"{result['rows']:>9,}  {result['method']:<15} failed: {result['error']}")
    elif result["task"] == "nearest labelled":
        print(f"{result['rows']:>9,}  {result['method']:<15} build {result['build_s']:7.2f} s"
              f" (cpu {result['build_cpu_s']:6.2f} s)"
              f"  mem {result['memory_mib']:7.0f} MiB  p50 {result['p50_ms']:7.2f} ms"
              f"  p99 {result['p99_ms']:7.2f} ms  recall@5 {result['recall']:.3f}")
    else:
        build = f"{result['build_s']:7.1f} s" if result["build_s"] is not None else "     -   "
        update = result.get("update_s")
        update = f"{update:7.1f} s" if update is not None else "     -   "
        print(f"{result['rows']:>9,}  {result['method']:<15} build {build}"
              f"  total {result['total_s']:7.1f} s (cpu {result.get('cpu_s', 0):7.1f} s)"
              f"  +1 % rows {update}"
              f"  mem {result['memory_mib']:7.0f} MiB"
              f"  recall {result['recall']:.3f} of {result['planted']:,} pairs"
              f"  ({result['groups']:,} groups)")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--methods", nargs="+", default=LABELLED_METHODS + DUPLICATE_METHODS)
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "ROWS"), help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=int, default=CHILD_TIMEOUT_S,
                        help="seconds one measurement may take before it is reported stopped")
    parser.add_argument("--json", type=Path, help="append each result as a JSON line here")
    args = parser.parse_args()
    if args.child:
        method, rows = args.child[0], int(args.child[1])
        run = run_labelled if method in LABELLED_METHODS else run_duplicates
        print(json.dumps(run(method, rows)))
        return
    print(f"cores: {os.cpu_count()}, dim {DIM}, float16 pool, threshold {THRESHOLD}")
    for rows in args.rows:
        make_pool(rows)
        for method in args.methods:
            try:
                done = subprocess.run([sys.executable, __file__, "--child", method, str(rows)],
                                      capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                done = subprocess.CompletedProcess([], 1, "", f"stopped after {args.timeout} s")
            try:
                result = json.loads(done.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                result = {"rows": rows, "method": method,
                          "error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
            _print(result)
            if args.json:
                with open(args.json, "a") as out:
                    out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
