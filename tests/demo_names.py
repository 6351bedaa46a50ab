"""Checks that a demo image's name gives no class away (used by both demos' tests)."""

from __future__ import annotations

import re

from labeler.demo import load_demo_images


def class_words() -> list[str]:
    """Every class name, as written and as a file name would spell it, lower case."""
    _, _, names = load_demo_images()
    words = set()
    for name in names:
        words |= {name.lower(), *re.split(r"[^a-z]+", name.lower())}
    return sorted(word for word in words if len(word) > 1)  # "T-shirt": "shirt", not "t"


def assert_neutral(names: list[str]) -> None:
    words = class_words()
    assert "trouser" in words and "shirt" in words and "boot" in words
    leaks = [(name, word) for name in names for word in words if word in name.lower()]
    assert not leaks, f"names that give the class away: {leaks[:5]}"
