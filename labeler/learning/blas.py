"""One BLAS thread for small matrix products, without inspecting the process every time.

Scoring the pool and sketching it multiply 512-row blocks by a few columns: too small to
split, and OpenBLAS's own threads made such products ~30x slower on a busy 2-core machine.
So those loops run with BLAS limited to one thread (process-wide, while they run).

threadpoolctl finds the loaded BLAS libraries by inspecting the process, ~6 ms each time,
which a whole 100,000-row predict (~0.13 s) would feel. The libraries a process has loaded
never change, so the controller is built once per process and kept here: the one
module-level holder in ``labeler.learning``. It describes the process, not any app's
data, so it is not an entry of the app's cache (``labeler.cache``), which this package
may not import anyway.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cache
from typing import Any

from threadpoolctl import ThreadpoolController


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # numpy (and so its BLAS) is loaded by now


def one_blas_thread() -> AbstractContextManager[Any]:
    """A context in which BLAS uses one thread (restored afterwards)."""
    return _controller().limit(limits=1, user_api="blas")
