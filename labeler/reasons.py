"""Why an image was chosen, in words an annotator understands (no scores, no jargon).

One sentence per sampling strategy (``learning.strategies.STRATEGIES``), filled in with the model's
own top classes where the strategy is about the model's doubt.
"""

from __future__ import annotations

from typing import Any

IMPORT_ORDER = "import order"


def _pct(probability: float) -> str:
    return f"{probability * 100:.0f}\u00a0%"  # no-break space: "24 %" never splits a line


def _named(probabilities: list[dict[str, Any]], n: int) -> list[str]:
    return [f"{p['label']} ({_pct(p['probability'])})" for p in probabilities[:n]]


def describe(strategy: str | None, probabilities: list[dict[str, Any]]) -> str:
    """One sentence saying why the queue served an image.

    Args:
        strategy: the strategy of the round that ranked the image (``None`` or
            ``"import order"`` when no round ranked it).
        probabilities: the model's top classes for the image, most likely first
            (``[{"label", "probability"}]``); empty when no model is trained.

    Returns:
        A sentence such as "The model is least sure between Coat (24 %) and Shirt (23 %):
        the closest call among similar images."
    """
    if strategy in (None, "", IMPORT_ORDER):
        return "Not ranked by a round yet: images are shown in the order they were imported."
    if strategy == "typical":
        return ("A typical example of a group of similar images; groups that nobody has "
                "labelled yet come first, so each label teaches the model a whole group.")
    if strategy in ("probcover", "maxherding", "typiclust"):
        return ("Chosen to cover the collection: it stands for many similar images that no "
                "label covers yet, so each label teaches the model a whole region.")
    if strategy == "random":
        return ("Picked at random: this project's baseline order, which the other "
                "strategies are measured against.")
    top = _named(probabilities, 3)
    if strategy in ("margin", "margin_diverse") and len(top) >= 2:
        closest = ("one of the closest calls in the project" if strategy == "margin"
                   else "the closest call among similar images")
        return f"The model is least sure between {top[0]} and {top[1]}: {closest}."
    if strategy == "least_confident" and top:
        return f"The model's best guess is only {top[0]}: it is unsure what this is."
    if strategy == "entropy" and len(top) >= 2:
        spread = ", ".join(top[:-1]) + f" and {top[-1]}"
        return f"The model spreads its guesses over {spread}: it cannot tell what this is."
    return "The model was unsure about this image when the queue was last ordered."
