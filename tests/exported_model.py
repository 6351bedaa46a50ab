"""Run an exported ``.keras`` model the way the README tells users to, in a fresh Python.

The README's "Using the exported model" snippet is read from README.md and executed as
written (only its two file names replaced), in a new interpreter that never imports
labeler: what a user who copies it gets is what the parity tests and
``bench/export_parity.py`` measure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"
SNIPPET_MODEL, SNIPPET_IMAGE = '"project.keras"', '"photo.jpg"'

# Runs in the fresh interpreter. argv: model, image list (one path a line), output .npz.
_PREDICT = textwrap.dedent("""
    import collections, json, sys
    import numpy as np

    snippet_path, model_path, list_path, out_path = sys.argv[1:]
    paths = open(list_path, encoding="utf-8").read().splitlines()
    snippet = open(snippet_path, encoding="utf-8").read()
    snippet = snippet.replace(%(model)r, repr(model_path)).replace(%(image)r, repr(paths[0]))
    namespace = {"__name__": "readme_snippet"}
    exec(compile(snippet, "README snippet", "exec"), namespace)
    model, read_rgb = namespace["model"], namespace["read_rgb"]

    # Images of one size go through the model together: the same per-image computation.
    by_shape = collections.defaultdict(list)
    pixels = [read_rgb(path) for path in paths]
    for index, array in enumerate(pixels):
        by_shape[array.shape].append(index)
    probabilities = [None] * len(paths)
    for indices in by_shape.values():
        for start in range(0, len(indices), 64):
            chunk = indices[start:start + 64]
            out = model.predict(np.stack([pixels[i] for i in chunk]), verbose=0)
            for i, row in zip(chunk, out["probabilities"]):
                probabilities[i] = row
    np.save(out_path, np.stack(probabilities))
    assert not [m for m in sys.modules if m.split(".")[0] == "labeler"], "imported labeler"
    print(json.dumps({"classes": model.get_layer("label").get_vocabulary()}))
""") % {"model": SNIPPET_MODEL, "image": SNIPPET_IMAGE}


@dataclass(frozen=True)
class SnippetPredictions:
    """What the README's snippet predicts for each file."""

    classes: list[str]  # the model's class names, in probability-column order
    probabilities: np.ndarray  # (n_files, n_classes) float32

    @property
    def labels(self) -> list[str]:
        return [self.classes[k] for k in self.probabilities.argmax(axis=1)]

    def confidence_of(self, index: int, class_name: str) -> float:
        return float(self.probabilities[index, self.classes.index(class_name)])


def readme_snippet() -> str:
    """The Python block of the README's "Using the exported model" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Using the exported model", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README: no ```python block under 'Using the exported model'"
    code = match.group(1)
    assert SNIPPET_MODEL in code and SNIPPET_IMAGE in code, "README snippet's file names moved"
    return code


def predict_with_readme_snippet(model_path: Path, files: list[Path], workdir: Path,
                                timeout_s: float = 900) -> SnippetPredictions:
    """Predict ``files`` with the exported model through the README's snippet.

    Args:
        model_path: The exported ``.keras`` file.
        files: Image files, predicted one by one as the snippet does (same-sized images
            batched together).
        workdir: Scratch folder (the child's working and home directory).
        timeout_s: Limit for the child process.

    Returns:
        The class names and one probability row per file.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    snippet_path, list_path = workdir / "snippet.py", workdir / "files.txt"
    out_path = workdir / "probabilities.npy"
    snippet_path.write_text(readme_snippet(), encoding="utf-8")
    list_path.write_text("\n".join(str(f) for f in files), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", _PREDICT, str(snippet_path), str(model_path), str(list_path),
         str(out_path)],
        capture_output=True, text=True, timeout=timeout_s, cwd=workdir,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir),
             "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return SnippetPredictions(report["classes"], np.load(out_path))
