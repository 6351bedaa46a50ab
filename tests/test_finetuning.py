"""Fine-tuning as a job, with fake backbones: the verdict, adoption, the switch, resuming.

The training itself (TensorFlow) is replaced by a stand-in that reports chosen held-out
figures through the real verdict; tests/integration/test_finetune.py runs the real one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from labeler.embeddings import register_backbone
from labeler.embeddings.backbone import BackboneSpec
from labeler.embeddings.finetune import verdict
from labeler.extensions import db
from labeler.finetuning import finetune_project
from labeler.jobs import JobKind, run_inline
from labeler.models import JobStatus, Project
from labeler.project_vectors import current_space, current_vectors, vector_store
from labeler.rounds import latest_round
from labeler.storage import data_root
from tests.builders import embedded_colour_project, images, label_all
from tests.fakes import FAKE_BACKBONE, FakeBackbone


@dataclass
class StandInResult:
    """What `finetune` returns, with chosen held-out figures and the real verdict."""

    frozen_accuracy: float
    finetuned_accuracy: float
    tuned: FakeBackbone
    split: tuple[int, int, int] = (18, 6, 6)
    epochs: int = 3
    best_epoch: int = 2
    seconds: dict[str, float] = field(default_factory=lambda: {"train": 1.0})
    saved: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.adopted, self.reason = verdict(self.frozen_accuracy, self.finetuned_accuracy,
                                            self.split[2])

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"stand-in for a .keras file")
        # The app loads the saved file by its path: make that name give the tuned stand-in.
        register_backbone(str(path), lambda cache_dir: self.tuned)
        self.saved.append(path)
        return path


@pytest.fixture
def project(app, tmp_path, lead):
    project = embedded_colour_project(tmp_path / "in", per_colour=20, seed_step=7)
    label_all(project, lead, every=2)
    return project


def stand_in(monkeypatch, frozen: float, finetuned: float, tuned: FakeBackbone | None = None):
    result = StandInResult(frozen, finetuned, tuned or FakeBackbone(
        spec=BackboneSpec("tuned", "sha256:0123-p2", 16, 48)))
    calls = []

    def fake_finetune(backbone, paths, labels, settings=None, progress=None):
        calls.append((backbone.spec.name, len(paths), sorted(set(labels)), settings))
        return result

    monkeypatch.setattr("labeler.finetuning.finetune", fake_finetune)
    return result, calls


def test_the_verdict_adopts_only_a_strict_gain_and_says_both_figures():
    assert verdict(0.80, 0.85, 40) == (True, "The fine-tuned backbone beats the frozen one on "
                                             "40 held-out labels: 85.0% against 80.0%.")
    assert verdict(0.80, 0.80, 40)[0] is False
    assert verdict(0.80, 0.84, 40, min_gain=0.05)[0] is False
    # No epoch improved on the start: the weights are the frozen ones, whatever the bar.
    unchanged = verdict(0.80, 0.80, 40, min_gain=-1.0, best_epoch=0)
    assert unchanged[0] is False and "never lowered the held-out loss" in unchanged[1]


def test_adoption_is_refused_when_held_out_accuracy_drops(project, monkeypatch, runner):
    space_before = current_space(project)
    result, calls = stand_in(monkeypatch, frozen=0.90, finetuned=0.80)

    job = run_inline(JobKind.FINETUNE, project.id, finetune_project)

    assert job.status == JobStatus.SUCCEEDED, job.message
    assert job.message == ("The fine-tuned backbone does not beat the frozen one on 6 held-out "
                           "labels: 80.0% against 90.0%; the frozen backbone stays.")
    assert calls[0][:3] == (FAKE_BACKBONE, 30, ["blue", "green", "red"])
    project = db.session.get(Project, project.id)
    assert project.settings["backbone"] == FAKE_BACKBONE
    assert current_space(project) == space_before
    assert "pending_backbone" not in project.settings
    record = project.settings["finetune"]
    assert (record["frozen_accuracy"], record["finetuned_accuracy"], record["adopted"]) == (
        0.90, 0.80, False)
    assert result.saved == [] and not (data_root() / "backbones" / "finetuned").exists()
    shown = runner.invoke(args=["project", "show", "colours"]).output
    assert f"  fine-tune:  {job.message}\n" in shown


def test_an_adopted_backbone_serves_once_every_image_has_its_vector_and_a_crash_resumes(
        project, monkeypatch):
    old_space = current_space(project)
    tuned = FakeBackbone(spec=BackboneSpec("tuned", "sha256:0123-p2", 16, 48), fail_after=1)
    result, _ = stand_in(monkeypatch, frozen=0.80, finetuned=0.90, tuned=tuned)

    crashed = run_inline(JobKind.FINETUNE, project.id, finetune_project)

    # Killed after one durable batch of 32: the old vectors still serve, the new ones stay.
    assert crashed.status == JobStatus.FAILED and "simulated crash" in crashed.message
    project = db.session.get(Project, project.id)
    (saved,) = result.saved
    assert project.settings["pending_backbone"] == str(saved)
    assert project.settings["backbone"] == FAKE_BACKBONE and current_space(project) == old_space
    assert project.settings["finetune"]["adopted"] is True
    assert len(vector_store(project, tuned).image_ids()) == 32

    tuned.fail_after = None
    resumed = run_inline(JobKind.FINETUNE, project.id, finetune_project)

    assert resumed.status == JobStatus.SUCCEEDED, resumed.message
    assert tuned.calls == [60, 28]  # the second run embedded only what was missing
    project = db.session.get(Project, project.id)
    assert project.settings["backbone"] == str(saved)
    assert "pending_backbone" not in project.settings
    new_space = current_space(project)
    assert (new_space.backbone, new_space.version) == ("tuned", "sha256:0123-p2")
    assert sorted(current_vectors(project).image_ids().tolist()) == [i.id for i in images(project)]
    round_ = latest_round(project)
    assert round_.status == JobStatus.SUCCEEDED and round_.metrics["pool"] == 60
    assert "switched to it" in resumed.message


def test_a_second_fine_tune_starts_again_from_the_imagenet_backbone(project, monkeypatch):
    result, calls = stand_in(monkeypatch, frozen=0.80, finetuned=0.90)
    assert run_inline(JobKind.FINETUNE, project.id, finetune_project).status == "succeeded"

    run_inline(JobKind.FINETUNE, project.id, finetune_project)

    assert [name for name, *_ in calls] == [FAKE_BACKBONE, FAKE_BACKBONE]
    assert np.isclose(db.session.get(Project, project.id).settings["finetune"][
        "finetuned_accuracy"], 0.90)


def test_choosing_another_backbone_drops_a_pending_fine_tuned_one(project, monkeypatch):
    from labeler.project_vectors import set_project_backbone

    tuned = FakeBackbone(spec=BackboneSpec("tuned", "sha256:0123-p2", 16, 48), fail_after=1)
    stand_in(monkeypatch, frozen=0.80, finetuned=0.90, tuned=tuned)
    run_inline(JobKind.FINETUNE, project.id, finetune_project)
    assert db.session.get(Project, project.id).settings.get("pending_backbone")

    set_project_backbone(db.session.get(Project, project.id), "other-fake")

    settings = db.session.get(Project, project.id).settings
    assert settings["backbone"] == "other-fake" and "pending_backbone" not in settings
