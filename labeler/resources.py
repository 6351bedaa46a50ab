"""Find the directories that live at the top of the repository but ship inside the wheel.

In a checkout (or an editable install) ``templates/``, ``static/`` and ``migrations/`` sit
beside the ``labeler`` package; the wheel copies them into it (see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Absolute path of ``templates``, ``static`` or ``migrations``, installed or not."""
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"labeler is installed without its {name!r} directory; "
                            "reinstall it with `pip install labeler`.")
