"""Rescoring the pool: predict every image, score by margin, pick the next ones.

A retrain round ends by predicting the whole pool with the new head and re-ranking it.
This times that step on a synthetic 1,000,000 x 1280 float16 pool written through
:class:`labeler.vectors.VectorStore`, exactly as the embed job stores vectors, and memory-mapped
the same way. The file is read once before timing, so the page cache holds it (as it does on a
server that scores every few minutes). The head is a 10-class :class:`LogisticHead` fitted on
a few hundred labelled rows.

Timed, at 100,000 rows (the first rows of the same file) and at 1,000,000:

* **select**: ``predict_proba`` over all rows + ``margin_scores`` + ``select_top(100)``;
* **realistic**: ``predict_proba`` + ``rank_pool("margin_diverse", n=10)``, what the retrain
  round runs (margin, then k-means over the 100 best candidates).

Goals: ≤ 2 s at 1,000,000 rows and ≤ 0.2 s at 100,000 rows (median of the repeats) on the
2-core machine; ``MET``/``MISSED`` is printed for both paths. Baselines in the same run: the
previous ``LogisticHead.predict_proba`` (numpy's float16 cast per 16,384-row chunk, default
BLAS threads), the naive scikit-learn ``StandardScaler + LogisticRegression`` pipeline on the
pool converted to float64 (100,000 rows only: at 1,000,000 rows the float64 copy and its scaled
copy would need ~20 GB), and modAL's ``margin_sampling``. A profile splits ``predict_proba``
into its parts (inf/NaN check, float16 conversion, matrix product, softmax).

    python bench/rescoring.py [--rows 1000000] [--small 100000] [--repeats 3] [--keep DIR]

With ``--keep DIR`` the synthetic pool is written once to DIR and reused by later runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from modAL.uncertainty import margin_sampling
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from labeler.learning import float16, heads
from labeler.learning.blas import one_blas_thread
from labeler.learning.heads import LogisticHead
from labeler.learning.strategies import margin_scores, rank_pool, select_top
from labeler.vectors import EmbeddingSpace, VectorStore

GOAL_S = {1_000_000: 2.0, 100_000: 0.2}
SPACE = EmbeddingSpace(backbone="synthetic", version="1", input_size=224, dim=1280)
WRITE_ROWS = 65_536
N_PICKS = 100


# --- measuring -------------------------------------------------------------------------------


def load_average() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _rss_anon_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


@contextmanager
def peak_anonymous_memory() -> Iterator[dict[str, float]]:
    """Poll the process's anonymous RSS (heap, not the mapped pool) and keep the peak, in MiB.

    ``ru_maxrss`` also counts the pages of the memory-mapped pool that were touched (2.4 GiB
    at 1,000,000 rows), which says nothing about what scoring allocates; this does.
    """
    peak = [_rss_anon_kb()]
    result = {"start_mib": peak[0] / 1024, "peak_mib": 0.0}
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss_anon_kb())

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        yield result
    finally:
        stop.set()
        poller.join()
        result["peak_mib"] = max(peak[0], _rss_anon_kb()) / 1024


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Run ``fn`` ``repeats`` times; return the wall times and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def fmt(times: list[float]) -> str:
    return f"median {statistics.median(times):7.3f} s  best {min(times):7.3f} s"


# --- the synthetic pool ----------------------------------------------------------------------


def build_pool(folder: Path, n_rows: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Write (or reuse) ``n_rows`` synthetic embeddings; return (memory-map, class of each row).

    Rows look like pooled ReLU6 features: non-negative, one centre per class plus noise. The
    noise is the mean of two rows of a fixed bank, so generating 1,000,000 rows takes seconds.
    """
    store = VectorStore(folder, project_id=1, space=SPACE)
    labels_path = folder / "classes.npy"
    if len(store) == n_rows and labels_path.exists():
        return store.matrix(), np.load(labels_path)
    if len(store):
        raise SystemExit(f"{folder} holds a pool of another size; remove it or pick another dir.")
    rng = np.random.default_rng(0)
    centres = np.abs(rng.standard_normal((n_classes, SPACE.dim), dtype=np.float32))
    bank = rng.standard_normal((8192, SPACE.dim), dtype=np.float32)
    classes = rng.integers(0, n_classes, n_rows).astype(np.int64)
    with store.writer() as writer:
        for start in range(0, n_rows, WRITE_ROWS):
            stop = min(start + WRITE_ROWS, n_rows)
            a, b = rng.integers(0, len(bank), (2, stop - start))
            rows = centres[classes[start:stop]] + 0.4 * (bank[a] + bank[b])
            np.clip(rows, 0.0, 6.0, out=rows)
            writer.append(np.arange(start, stop), rows.astype(np.float16))
    np.save(labels_path, classes)
    return store.matrix(), classes


def read_into_page_cache(path: Path) -> float:
    """Read the file once so that the timed runs find it in memory; return GiB/s."""
    buffer = bytearray(64 << 20)
    start = time.perf_counter()
    total = 0
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            total += n
    return total / (1 << 30) / (time.perf_counter() - start)


# --- the paths being timed -------------------------------------------------------------------


def select_path(head: LogisticHead, pool: np.ndarray, labelled: np.ndarray) -> dict[str, Any]:
    """predict_proba + margin scores + top 100, each stage timed."""
    t0 = time.perf_counter()
    proba = head.predict_proba(pool)
    t1 = time.perf_counter()
    scores = margin_scores(proba)
    t2 = time.perf_counter()
    scores[labelled] = -np.inf
    picks = select_top(scores, N_PICKS)
    t3 = time.perf_counter()
    return {"predict": t1 - t0, "margin": t2 - t1, "select": t3 - t2, "total": t3 - t0,
            "picks": picks, "proba": proba}


def realistic_path(head: LogisticHead, pool: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """predict_proba + rank_pool('margin_diverse', n=10), as a retrain round does."""
    t0 = time.perf_counter()
    proba = head.predict_proba(pool)
    t1 = time.perf_counter()
    picks = rank_pool("margin_diverse", n=10, labelled_mask=mask, proba=proba,
                      embeddings=pool, rng=0)
    t2 = time.perf_counter()
    return {"predict": t1 - t0, "rank": t2 - t1, "total": t2 - t0, "picks": picks.indices}


def previous_predict_proba(head: LogisticHead, pool: np.ndarray) -> np.ndarray:
    """``LogisticHead.predict_proba`` as it was: numpy's cast per chunk, default BLAS threads."""

    def proba_of_chunk(chunk: np.ndarray) -> np.ndarray:
        logits = chunk @ head.coef_.T.astype(chunk.dtype) + head.intercept_
        return heads._logistic_proba(logits)

    return heads.chunked_proba(head, pool, proba_of_chunk)


def profile_predict(head: LogisticHead, pool: np.ndarray) -> dict[str, float]:
    """Time the parts of the float16 fast path separately, with the same block sizes."""
    block_rows = heads._FLOAT16_BLOCK_ROWS
    weights = np.ascontiguousarray(
        (head.coef_ * float16.FLOAT16_SHIFT_SCALE).T, dtype=np.float32)
    buffer = np.empty((block_rows, pool.shape[1]), dtype=np.int32)
    cast = np.empty((block_rows, pool.shape[1]), dtype=np.float32)
    logits = np.empty((len(pool), weights.shape[1]), dtype=np.float32)
    blocks = [(s, min(s + block_rows, len(pool))) for s in range(0, len(pool), block_rows)]
    parts: dict[str, float] = {}
    with one_blas_thread():
        start = time.perf_counter()
        for s, e in blocks:
            float16.float16_has_nonfinite(pool[s:e])
        parts["inf/NaN check"] = time.perf_counter() - start
        start = time.perf_counter()
        for s, e in blocks:
            float16.float16_bits_as_float32(pool[s:e], buffer[: e - s])
        parts["float16 -> float32 (bit shifts)"] = time.perf_counter() - start
        block = buffer.view(np.float32)
        start = time.perf_counter()
        for s, e in blocks:
            np.matmul(block[: e - s], weights, out=logits[s:e])
        parts["matrix product (1 BLAS thread)"] = time.perf_counter() - start
        start = time.perf_counter()
        for s, e in blocks:
            np.copyto(cast[: e - s], pool[s:e])
        parts["(numpy's float16 cast, replaced)"] = time.perf_counter() - start
    chunk_rows = heads._PREDICT_CHUNK_ROWS
    start = time.perf_counter()
    for s in range(0, len(pool), chunk_rows):
        heads._logistic_proba(logits[s : s + chunk_rows] + head.intercept_)
    parts["intercept + softmax"] = time.perf_counter() - start
    return parts


def naive_pipeline(pool: np.ndarray, labelled: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    """The obvious scikit-learn way: a fitted pipeline fed the pool as float64."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000))
    model.fit(np.asarray(pool[labelled], dtype=np.float64), y)

    def run() -> np.ndarray:
        proba = model.predict_proba(np.asarray(pool, dtype=np.float64))
        scores = margin_scores(proba)
        scores[labelled] = -np.inf
        return select_top(scores, N_PICKS)

    return run


# --- one size --------------------------------------------------------------------------------


def bench_size(
    pool: np.ndarray, classes: np.ndarray, n_labelled: int, repeats: int, baselines: bool
) -> dict[str, float]:
    n_rows = len(pool)
    rng = np.random.default_rng(1)
    labelled = np.sort(rng.choice(n_rows, n_labelled, replace=False))
    mask = np.zeros(n_rows, dtype=bool)
    mask[labelled] = True
    head = LogisticHead().fit(np.asarray(pool[labelled], dtype=np.float32), classes[labelled])
    print(f"\n== {n_rows:,} rows x {pool.shape[1]} float16, {len(head.classes_)} classes, "
          f"{n_labelled} labels (head: {head.n_iter_[0]} lbfgs iterations); "
          f"{heads._predict_threads(n_rows)} predict thread(s); {load_average()}")

    first = select_path(head, pool, labelled)  # maps the pages of this process once
    print(f"first call (page faults of the mapping): {first['total']:.3f} s")
    with peak_anonymous_memory() as memory:
        runs = [select_path(head, pool, labelled) for _ in range(repeats)]
    select_total = [r["total"] for r in runs]
    for stage in ("predict", "margin", "select"):
        print(f"  {stage:<10} {fmt([r[stage] for r in runs])}")
    print(f"select     predict + margin + top {N_PICKS}: {fmt(select_total)}   "
          f"anonymous RSS {memory['start_mib']:.0f} -> peak {memory['peak_mib']:.0f} MiB")
    realistic = [realistic_path(head, pool, mask) for _ in range(repeats)]
    print(f"  rank_pool('margin_diverse', n=10) alone: {fmt([r['rank'] for r in realistic])}")
    print(f"realistic  predict + rank_pool margin_diverse: {fmt([r['total'] for r in realistic])}")

    # The fast path must give the previous path's answer.
    previous = previous_predict_proba(head, pool[: min(n_rows, 50_000)])
    drift = float(np.abs(previous - runs[-1]["proba"][: len(previous)]).max())
    print(f"  max |proba - previous implementation| on {len(previous):,} rows: {drift:.2e}")

    print("profile of predict_proba (one pass each):")
    for name, seconds in profile_predict(head, pool).items():
        print(f"  {name:<34} {seconds:7.3f} s")

    print("baselines:")
    times, _ = timed(lambda: previous_predict_proba(head, pool), 1 if n_rows > 200_000 else 3)
    print(f"  previous LogisticHead.predict_proba alone        {fmt(times)}")
    times, (modal_idx, _) = timed(lambda: margin_sampling(head, pool, n_instances=N_PICKS), 1)
    ours = select_top(margin_scores(runs[-1]["proba"]), N_PICKS)  # unmasked, as modAL is
    overlap = len(np.intersect1d(ours, modal_idx))
    print(f"  modAL margin_sampling(n_instances={N_PICKS}) (our predict) {fmt(times)}  "
          f"same picks: {overlap}/{N_PICKS}")
    if baselines:
        run_naive = naive_pipeline(pool, labelled, classes[labelled])
        with peak_anonymous_memory() as memory:
            times, naive_picks = timed(run_naive, 1)
        same = len(np.intersect1d(naive_picks, runs[-1]["picks"]))
        print(f"  naive StandardScaler+LogisticRegression, float64 {fmt(times)}  "
              f"anonymous RSS {memory['start_mib']:.0f} -> peak {memory['peak_mib']:.0f} MiB  "
              f"same picks: {same}/{N_PICKS}")
    else:
        gib = n_rows * pool.shape[1] * 16 / 2**30
        print("  naive StandardScaler+LogisticRegression, float64: skipped at this size "
              f"(the float64 pool and its scaled copy need ~{gib:.0f} GiB); see the "
              "100,000-row figure")
    return {"select": statistics.median(select_total),
            "realistic": statistics.median(r["total"] for r in realistic)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--labelled", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="folder to keep the synthetic pool in")
    args = parser.parse_args()

    print(f"rescoring benchmark; {os.cpu_count()} CPUs; {load_average()}")
    with tempfile.TemporaryDirectory(prefix="rescoring-") as tmp:
        folder = args.keep or Path(tmp)
        start = time.perf_counter()
        pool, classes = build_pool(folder, args.rows, args.classes)
        path = VectorStore(folder, 1, SPACE).vectors_path
        print(f"pool {path} ({path.stat().st_size / 2**30:.2f} GiB) ready in "
              f"{time.perf_counter() - start:.1f} s; read into the page cache at "
              f"{read_into_page_cache(path):.1f} GiB/s")
        results = {}
        for n_rows in sorted({min(args.small, args.rows), args.rows}):
            # The naive float64 pipeline needs 16 bytes per value twice over: small sizes only.
            results[n_rows] = bench_size(pool[:n_rows], classes[:n_rows], args.labelled,
                                         args.repeats, baselines=n_rows <= 200_000)
        del pool

    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\ngoals (median of {args.repeats}; {load_average()}; "
          f"peak RSS, mapped pool pages included: {peak_rss:.2f} GiB):")
    for n_rows, result in results.items():
        goal = GOAL_S.get(n_rows)
        if goal is None:
            continue
        for path_name, seconds in result.items():
            verdict = "MET" if seconds <= goal else "MISSED"
            print(f"  {n_rows:>9,} rows, {path_name:<9} {seconds:6.3f} s  "
                  f"(goal ≤ {goal} s)  {verdict}")


if __name__ == "__main__":
    main()
