"""Running the tests never rewrites tracked files (a clean clone stays clean)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.e2e.conftest import REPO_ROOT, SCREENSHOTS


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True,
                          text=True, check=False)


@pytest.fixture
def checkout() -> None:
    if shutil.which("git") is None or git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout (e.g. an unpacked sdist): nothing is tracked")


def test_browser_test_screenshots_go_to_an_ignored_untracked_folder(checkout):
    folder = SCREENSHOTS.relative_to(REPO_ROOT).as_posix()
    assert git("ls-files", "--", folder).stdout == ""  # nothing there is tracked
    probe = f"{folder}/dashboard.png"
    assert git("check-ignore", "-q", "--no-index", probe).returncode == 0, (
        f"{probe} is not ignored: add its folder to .gitignore")


def test_the_readme_screenshots_are_tracked_and_not_where_tests_write(checkout):
    tracked = git("ls-files", "--", "docs/screenshots").stdout.split()
    assert {"docs/screenshots/labelling.png", "docs/screenshots/gallery.png",
            "docs/screenshots/dashboard.png", "docs/screenshots/map.png"} <= set(tracked)
    assert not SCREENSHOTS.is_relative_to(REPO_ROOT / "docs")
