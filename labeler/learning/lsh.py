"""Locality-sensitive hashing of embeddings: sketches, hyperplane keys, buckets.

The candidate-pair machinery behind :func:`labeler.learning.duplicates.near_duplicate_groups`
(which explains the method): each row is sketched once, its unit vector times a random
Gaussian matrix, 64 numbers instead of 1280; each hash table keys the sketches by the side
of random hyperplanes they lie on, and rows sharing a key prefix form a bucket whose pairs
are candidates. Pure numpy; the pool may be a float16 memory map, read block by block.
"""

from __future__ import annotations

import numpy as np

from .float16 import FLOAT16_SHIFT_SCALE, float16_bits_as_float32

#: Dimensions of a sketch.
SKETCH_DIMS = 64
# Rows converted and sketched at a time: a 512 x 1280 float32 block stays in cache.
_BLOCK_ROWS = 512
# Sketch rows hashed at a time.
_KEY_ROWS = 65_536


def row_norms(rows: np.ndarray) -> np.ndarray:
    """Euclidean length of each row."""
    return np.sqrt(np.einsum("ij,ij->i", rows, rows))  # no temporary rows * rows

def sketch(embeddings: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One streaming pass: each row projected to ``SKETCH_DIMS`` dimensions, unit length.

    The sketch of a row is a Gaussian projection of its direction, scaled to length 1, so the
    dot product of two sketches estimates the cosine of the two rows. Rows no wider than a
    sketch are their own sketch (scaled to length 1), and the estimate is exact.
    """
    n_rows, dim = embeddings.shape
    if dim <= SKETCH_DIMS:
        projection = np.eye(dim, dtype=np.float32)
    else:
        projection = rng.standard_normal((dim, SKETCH_DIMS), dtype=np.float32)
    if embeddings.dtype == np.float16:
        # Rows come in scaled by 2**-112 (see float16_bits_as_float32); scaling the projection
        # instead saves a pass over every row, and the scale cancels in the normalisation.
        projection *= np.float32(FLOAT16_SHIFT_SCALE)
    sketch = np.empty((n_rows, projection.shape[1]), dtype=np.float32)
    buffer = np.empty((min(n_rows, _BLOCK_ROWS), dim), dtype=np.int32)
    for start in range(0, n_rows, _BLOCK_ROWS):
        rows = np.asarray(embeddings[start : start + _BLOCK_ROWS])
        if rows.dtype == np.float16:
            block = float16_bits_as_float32(rows, buffer[: len(rows)])
        else:
            block = rows.astype(np.float32, copy=False)
        np.matmul(block, projection, out=sketch[start : start + len(rows)])
    # A zero row has a zero sketch and stays zero: it matches nothing.
    norms = row_norms(sketch)[:, None]
    return np.divide(sketch, norms, out=sketch, where=norms > 0)


def table_keys(
    sketch: np.ndarray, centre: np.ndarray, key_bits: int, rng: np.random.Generator
) -> np.ndarray:
    """A ``key_bits``-bit key per row: on which side of each of the table's random hyperplanes
    (through the pool's centre) the row's sketch lies, first hyperplane most significant."""
    planes = rng.standard_normal((sketch.shape[1], key_bits), dtype=np.float32)
    offsets = centre @ planes
    keys = np.empty(len(sketch), dtype=np.uint64)
    padded = np.zeros((min(len(sketch), _KEY_ROWS), 64), dtype=bool)
    for start in range(0, len(sketch), _KEY_ROWS):
        bits = padded[: min(_KEY_ROWS, len(sketch) - start)]
        # The key is the last key_bits of 64 zero-padded bits, read as a big-endian uint64.
        np.greater(sketch[start : start + len(bits)] @ planes, offsets, out=bits[:, -key_bits:])
        keys[start : start + len(bits)] = np.packbits(bits, axis=1).view(">u8")[:, 0]
    return keys


def _pairs_in_runs(sizes: np.ndarray, max_bucket: int) -> int:
    """Pairs to check in runs of these sizes (a run over max_bucket is split further, so it
    counts at most ``max_bucket`` partners per row)."""
    small = sizes <= max_bucket
    return int((sizes[small] * (sizes[small] - 1) // 2).sum() + sizes[~small].sum() * max_bucket)


def buckets(
    code: np.ndarray, base_bits: int, key_bits: int, max_bucket: int, max_pairs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split sorted keys into buckets of 2..max_bucket rows.

    A bucket is a run of rows sharing the first ``base_bits`` bits of the key, or more bits
    if that leaves more than ``max_pairs`` pairs to check (clustered data, where many
    similar but not duplicate rows share short keys). A run larger than ``max_bucket`` is
    then split by the next bit, and so on, until it fits or all ``key_bits`` bits are used;
    runs still too large are returned separately.

    Returns:
        ``(starts, sizes, big_starts, big_sizes)``: positions in the sorted order.
    """
    n = len(code)
    # Length of the common prefix of each neighbouring pair of sorted keys: frexp's exponent
    # is the bit length (exact below 2**53; a longer key could only split a bucket early).
    common = key_bits - np.frexp((code[1:] ^ code[:-1]).astype(np.float64))[1]

    def runs(bits: int) -> tuple[np.ndarray, np.ndarray]:
        cut = np.flatnonzero(common < bits) + 1
        return np.r_[0, cut], np.r_[cut, n]

    # The fewest bits >= base_bits that keep the pairs within budget (more bits, fewer pairs).
    low, high = base_bits, key_bits
    while low < high:
        middle = (low + high) // 2
        starts, ends = runs(middle)
        if _pairs_in_runs(ends - starts, max_bucket) <= max_pairs:
            high = middle
        else:
            low = middle + 1
    bits = low
    starts, ends = runs(bits)
    kept_starts, kept_sizes = [], []
    while True:
        sizes = ends - starts
        fits = (sizes >= 2) & (sizes <= max_bucket)
        kept_starts.append(starts[fits])
        kept_sizes.append(sizes[fits])
        big = sizes > max_bucket
        starts, ends = starts[big], ends[big]
        if len(starts) == 0 or bits == key_bits:
            break
        # Inside each large run, cut wherever neighbours differ in the next bit.
        bits += 1
        gaps = ends - starts - 1
        inner = np.repeat(starts - np.r_[0, np.cumsum(gaps)[:-1]], gaps) + np.arange(gaps.sum())
        cuts = inner[common[inner] < bits] + 1
        new_starts = np.sort(np.concatenate([starts, cuts]))
        parent = np.searchsorted(starts, new_starts, side="right") - 1
        ends = np.minimum(np.r_[new_starts[1:], n], ends[parent])
        starts = new_starts
    return np.concatenate(kept_starts), np.concatenate(kept_sizes), starts, ends - starts


def bucket_pairs(
    order: np.ndarray, starts: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of rows that share a bucket (rows ``order[start : start + size]``)."""
    found_a, found_b = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for size in np.unique(sizes):
        first, second = np.triu_indices(size, 1)
        at = starts[sizes == size][:, None]
        found_a.append(order[at + first].ravel())
        found_b.append(order[at + second].ravel())
    return np.concatenate(found_a), np.concatenate(found_b)
