"""``python -m tests.serve_child <command> ...``: the labeler CLI with test hooks.

Used by tests/serverproc.py (and by crash tests for ``import``), so a child process can
embed and train with ``tests.fakes.FakeBackbone`` (projects created with backbone
"fake-colour-layout"). Crash tests must kill a job half-way, which the fast fake makes a
race; these environment variables slow the work down without changing what it does:

- ``LABELER_TEST_EMBED_DELAY_S``: sleep before each embedded batch of the fake backbone.
- ``LABELER_TEST_IMPORT_DELAY_S``: sleep before each imported file is processed.
- ``LABELER_TEST_ROUND_CHUNK``: rows per prediction-writing transaction of a round.
- ``LABELER_TEST_ROUND_DELAY_S``: sleep before each such transaction.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from labeler import importer, training
from labeler.cli import main
from labeler.embeddings import register_backbone
from labeler.embeddings.pipeline import EmbeddedBatch
from tests.fakes import FAKE_BACKBONE, FakeBackbone


class SlowFakeBackbone(FakeBackbone):
    """The fake backbone, pausing before each batch so a test can kill it mid-job."""

    delay_s: float = 0.0

    def embed_files(self, paths: Sequence[str], batch_size: int = 32) -> Iterator[EmbeddedBatch]:
        for batch in super().embed_files(paths, batch_size):
            time.sleep(self.delay_s)
            yield batch


def _delayed(func: Callable[..., Any], delay_s: float) -> Callable[..., Any]:
    """``func`` that first sleeps ``delay_s``."""

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(delay_s)
        return func(*args, **kwargs)

    return slow


def install_test_hooks(env: dict[str, str]) -> None:
    """Register the fake backbone and apply the slow-down settings found in ``env``."""
    embed_delay = float(env.get("LABELER_TEST_EMBED_DELAY_S", "0"))

    def make_backbone(cache_dir: object) -> FakeBackbone:
        backbone = SlowFakeBackbone()
        backbone.delay_s = embed_delay
        return backbone

    register_backbone(FAKE_BACKBONE, make_backbone)
    if delay := float(env.get("LABELER_TEST_IMPORT_DELAY_S", "0")):
        # Looked up through the module at call time by _processed_in_order.
        importer._process = _delayed(importer._process, delay)  # type: ignore[assignment]
    if chunk := int(env.get("LABELER_TEST_ROUND_CHUNK", "0")):
        training.WRITE_CHUNK = chunk
    if delay := float(env.get("LABELER_TEST_ROUND_DELAY_S", "0")):
        # _write_predictions builds one ``update(Image)`` statement per transaction, so
        # delaying it spaces the chunks out without touching what they write.
        training.update = _delayed(training.update, delay)  # type: ignore[assignment]


if __name__ == "__main__":
    install_test_hooks(dict(os.environ))
    main()
