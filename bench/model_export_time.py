"""What building the ``.keras`` model export costs a web worker, cold and warm.

Sets up a small project with the real EfficientNet-Lite0 backbone (hand-written digits from
scikit-learn, 3 classes, 4 labels each, one trained round), then in a FRESH Python process
on the same data directory, as a web worker that never embedded would be, times:

- the CSV export of the project (the baseline: what a streamed download costs),
- the first model export (imports TensorFlow, loads the backbone, builds and saves),
- a second model export in the same process (TensorFlow already loaded),

and the process's peak resident memory before and after. The numbers decide whether the
web page builds the model inside a request or in a background job (labeler/jobs/exports.py).

    python bench/model_export_time.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CLASSES = {0: "zero", 1: "one", 7: "seven"}

MEASURE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path

    from labeler import create_app
    from labeler.export import iter_csv
    from labeler.projects import get_project

    def peak_mib():
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    home, out = Path(sys.argv[1]), Path(sys.argv[2])
    app = create_app({"HOME": home, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        project = get_project("digits")
        started = time.perf_counter()
        rows = "".join(iter_csv(project, include_predictions=True)).count("\\n") - 1
        csv_s = time.perf_counter() - started
        before = peak_mib()
        tf_before = "tensorflow" in sys.modules
        from labeler.model_export import export_model
        started = time.perf_counter()
        export_model(project, out / "cold.keras")
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        export_model(project, out / "warm.keras")
        warm_s = time.perf_counter() - started
        print(json.dumps({"csv_rows": rows, "csv_s": csv_s, "cold_s": cold_s,
                          "warm_s": warm_s, "rss_before_mib": before,
                          "rss_after_mib": peak_mib(), "tf_before": tf_before,
                          "size_mib": (out / "cold.keras").stat().st_size / 2**20}))
""")


def prepare(home: Path) -> None:
    """The digits project: imported, embedded with the real backbone, labelled, trained."""
    from labeler import create_app
    from labeler.database import upgrade_database
    from labeler.importer import import_paths
    from labeler.jobs import run_inline
    from labeler.project_vectors import embed_project
    from labeler.projects import class_by_name, create_project
    from labeler.queue import lease_next, submit_label
    from labeler.training import run_round
    from labeler.users import create_user
    from tests import imagegen

    app = create_app({"HOME": home, "LOG_LEVEL": "WARNING"})
    upgrade_database(app)
    with app.app_context():
        project = create_project("digits", list(CLASSES.values()))
        folder = imagegen.digits_folder(home / "digits", CLASSES, per_class=12)
        import_paths(project, [folder])
        run_inline("embed", project.id, embed_project)
        annotator = create_user("ann", "password-123")
        given = dict.fromkeys(CLASSES.values(), 0)
        for image in lease_next(project, annotator, n=36):
            name = image.original_name.split("/")[-2]
            if given[name] < 4:
                submit_label(project, image.id, class_by_name(project, name), annotator)
                given[name] += 1
        job = run_inline("retrain", project.id, run_round)
        assert job.status == "succeeded", job.message


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        prepare(home)
        result = subprocess.run([sys.executable, "-c", MEASURE, str(home), scratch],
                                capture_output=True, text=True, check=True,
                                cwd=Path(__file__).resolve().parents[1])
        numbers = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"baseline: CSV export of {numbers['csv_rows']} rows: {numbers['csv_s'] * 1000:.0f} ms")
    print(f"model export, first in a fresh process: {numbers['cold_s']:.1f} s "
          f"({numbers['size_mib']:.1f} MiB file)")
    print(f"model export, second in that process  : {numbers['warm_s']:.1f} s")
    print(f"TensorFlow loaded before the first model export: {numbers['tf_before']}")
    print(f"peak memory of the process: {numbers['rss_before_mib']:.0f} MiB before the "
          f"first model export, {numbers['rss_after_mib']:.0f} MiB after")


if __name__ == "__main__":
    main()
