"""The embedding cache of ``labeler simulate``: each file embedded once per backbone version.

Vectors are kept in ``<cache_dir>/embeddings/<key>.npz`` keyed by each file's SHA-256 and
the backbone's name, version and input size. The backbone itself is injected (``load``):
this package imports no TensorFlow, and the CLI passes a loader of the real backbone (with
its identity when that is known without loading it, so a fully cached run never starts
TensorFlow).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from labeler.errors import LabelerError
from labeler.storage import atomic_writer, file_sha256

log = logging.getLogger(__name__)

# Write the embedding cache after this many new vectors, so an interrupted run keeps them.
_SAVE_EVERY = 1024

#: A backbone's identity: (name, version, input size).
Identity = tuple[str, str, int]


class FileEmbedder(Protocol):
    """What the cache needs of a backbone (``labeler.embeddings.Backbone`` has it).

    ``spec`` has ``name``, ``version`` and ``input_size``; ``embed_files`` yields batches
    with ``positions``, ``vectors`` and ``failed`` ((position, reason) pairs).
    """

    spec: Any

    def embed_files(self, paths: Sequence[str], batch_size: int = 32) -> Iterable[Any]: ...


class _VectorCache:
    """Embeddings of one backbone (name, version, input size), keyed by file SHA-256.

    One ``.npz`` per backbone key under ``<cache_dir>/embeddings/``, replaced atomically.
    """

    def __init__(self, cache_dir: Path, name: str, version: str, size: int) -> None:
        key = hashlib.sha256(f"{name}\0{version}\0{size}".encode()).hexdigest()[:16]
        self.path = cache_dir / "embeddings" / f"{key}.npz"
        self.meta = np.asarray([name, version, str(size)])
        self.vectors: dict[str, np.ndarray] = {}
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                if stored["meta"].tolist() == self.meta.tolist():
                    self.vectors = dict(
                        zip(stored["sha256"].tolist(), stored["vectors"], strict=True)
                    )
        except FileNotFoundError:
            pass
        except Exception as exc:  # a damaged cache only costs re-embedding
            log.warning("Ignoring the unreadable embedding cache %s (%s).", self.path, exc)

    def save(self) -> None:
        # Readers see the old file or the new one, never half of it.
        with atomic_writer(self.path) as handle:
            np.savez(
                handle,
                meta=self.meta,
                sha256=np.asarray(list(self.vectors), dtype="U64"),
                vectors=np.asarray(list(self.vectors.values()), dtype=np.float32),
            )


def cached_embeddings(
    paths: Sequence[str | os.PathLike[str]],
    cache_dir: str | os.PathLike[str],
    load: Callable[[], FileEmbedder],
    *,
    identity: Identity | None = None,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Embed image files with a backbone, reusing vectors computed before.

    A renamed or copied file is not embedded twice, and a changed backbone never serves
    stale vectors. The backbone is loaded (``load()``) only when some file is missing from
    the cache, or to learn its identity when ``identity`` is not given.

    Args:
        paths: Image files.
        cache_dir: Directory of the vector cache.
        load: Returns the backbone (called at most once).
        identity: The backbone's (name, version, input size), if known without loading it.
        batch_size: Images per forward pass.
        progress: Called as ``progress(done, total)`` after each batch, where ``total`` is
            the number of files that were not cached.

    Returns:
        float32 array of shape ``(len(paths), dim)``, in the order of ``paths``.

    Raises:
        LabelerError: Some files could not be read (they are listed), or the backbone
            cannot be loaded.
    """
    cache_dir = Path(cache_dir)
    try:
        hashes = [file_sha256(Path(p)) for p in paths]
    except OSError as exc:
        raise LabelerError(f"Cannot read {exc.filename} ({exc.strerror}); check the path.") from exc
    backbone = None
    if identity is None:
        backbone = load()
        identity = (backbone.spec.name, backbone.spec.version, backbone.spec.input_size)
    cache = _VectorCache(cache_dir, *identity)
    # One file per distinct content: duplicates are embedded once.
    missing = {h: Path(p) for h, p in zip(hashes, paths, strict=True) if h not in cache.vectors}
    if missing:
        _embed_missing(backbone or load(), cache, missing, batch_size, progress)
    if not hashes:
        return np.empty((0, 0), dtype=np.float32)
    return np.stack([cache.vectors[h] for h in hashes]).astype(np.float32, copy=False)


def _embed_missing(
    backbone: FileEmbedder,
    cache: _VectorCache,
    missing: dict[str, Path],
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    keys, files = list(missing), list(missing.values())
    failed: list[tuple[Path, str]] = []
    done = unsaved = 0
    for batch in backbone.embed_files([str(f) for f in files], batch_size=batch_size):
        for position, vector in zip(batch.positions, batch.vectors, strict=True):
            cache.vectors[keys[position]] = vector
        failed += [(files[position], reason) for position, reason in batch.failed]
        done += len(batch.positions) + len(batch.failed)
        unsaved += len(batch.positions)
        if unsaved >= _SAVE_EVERY:
            cache.save()
            unsaved = 0
        if progress is not None:
            progress(done, len(files))
    cache.save()
    if failed:
        listed = "; ".join(f"{path}: {reason}" for path, reason in failed[:5])
        raise LabelerError(
            f"{len(failed)} image(s) could not be read ({listed}); remove or replace them and "
            "run again (the others are cached)."
        )
