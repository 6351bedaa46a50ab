"""Why an image was chosen, in words: one sentence per strategy (labeler/reasons.py)."""

from __future__ import annotations

import pytest

from labeler.learning.strategies import STRATEGIES
from labeler.reasons import describe

TOP = [{"label": "Coat", "probability": 0.243}, {"label": "Shirt", "probability": 0.231},
       {"label": "Pullover", "probability": 0.176}]
FALLBACK = describe("something-new", TOP)


@pytest.mark.parametrize("strategy", sorted(set(STRATEGIES) - {"auto"}))
def test_every_strategy_a_round_records_has_its_own_sentence(strategy):
    # "auto" is never recorded: a round stores the strategy it resolved to.
    sentence = describe(strategy, TOP)
    assert sentence != FALLBACK and sentence.endswith(".")
    assert "score" not in sentence and "_" not in sentence  # words, not jargon


def test_uncertainty_names_the_classes_the_model_hesitates_between():
    assert describe("margin_diverse", TOP) == (
        "The model is least sure between Coat (24\u00a0%) and Shirt (23\u00a0%): the closest "
        "call among similar images.")
    assert "Coat (24\u00a0%)" in describe("least_confident", TOP)
    spread = "Coat (24\u00a0%), Shirt (23\u00a0%) and Pullover (18\u00a0%)"
    assert spread in describe("entropy", TOP)


def test_cold_start_and_unranked_say_so():
    assert describe("typical", []).startswith("A typical example of a group of similar images")
    assert "imported" in describe("import order", []) and describe(None, []) == describe(
        "import order", [])


def test_without_probabilities_uncertainty_still_reads_as_a_sentence():
    assert describe("margin", []) == FALLBACK
