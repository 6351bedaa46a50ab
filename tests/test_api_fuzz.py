"""schemathesis against a real ``labeler serve``: the API keeps the contract it publishes.

The server is the real command line (gunicorn workers, scheduler, jobs) on a project with
embedded images (the fake backbone, ``tests/serve_child.py``), and schemathesis 4 runs
every check in every phase, including the stateful one that follows the document's links,
once with a lead's token and once with an annotator's. The seed is fixed and the examples
per operation bounded, so a run is repeatable and takes a minute or two; it must end with
zero failures and zero errors. Runs on both databases (LABELER_TEST_DATABASE_URL).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serverproc import Home, ServerProcess, prepare_home, write_images

SEED = int(os.environ.get("LABELER_FUZZ_SEED", "20261203"))
EXAMPLES = int(os.environ.get("LABELER_FUZZ_EXAMPLES", "15"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Home]]:
    root = tmp_path_factory.mktemp("fuzz")
    write_images(root / "in", 12)
    home = prepare_home(root / "home", images=root / "in", embed=True, annotators=1)
    with ServerProcess(home.path) as server:
        yield server, home


def run_schemathesis(server: ServerProcess, token: str, workdir: Path) -> str:
    """``st run`` with every check and phase; its output (it exits non-zero on a failure)."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/api/v1/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--seed", str(SEED), "--max-examples", str(EXAMPLES),
        # One worker: Python 3.11 can fail hypothesis's concurrent ast.parse (a tool error).
        "--workers", "1", "--request-timeout", "120",  # slow requests on a loaded 2-core machine
        "--generation-database", "none", "--no-color",
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                            timeout=900, check=False)
    return result.stdout + result.stderr + f"\n(exit status {result.returncode})"


@pytest.mark.parametrize("role", ["lead", "annotator"])
def test_schemathesis_finds_nothing(served, role, tmp_path):
    server, home = served
    token = home.token if role == "lead" else home.annotator_tokens[0]
    output = run_schemathesis(server, token, tmp_path)
    summary = output[output.rfind("SUMMARY"):]
    assert "(exit status 0)" in output, output[-12000:]
    assert re.search(r"\d+ generated, \d+ passed", summary), summary
    assert "Error handling request" not in server.log(), server.log()[-5000:]
