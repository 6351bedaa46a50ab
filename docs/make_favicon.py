"""Draw static/favicon.ico (16, 32 and 48 px) from the shapes of static/favicon.svg.

Run once after changing the icon: ``.venv/bin/python docs/make_favicon.py``. Browsers use the
SVG (linked from templates/base.html); the ICO answers ``/favicon.ico`` for clients that
ask for it without reading the page.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

STATIC = Path(__file__).resolve().parents[1] / "static"
BLUE, WHITE = "#0b63ce", "#ffffff"
# The SVG's 32-unit geometry: a rounded square, a white label tag, the tag's hole.
TAG = [(7, 9.5), (9.5, 7), (17, 7), (26, 16), (16, 26), (7, 17)]
HOLE = (12, 12, 2.2)
SUPERSAMPLE = 256  # draw large, then shrink: smooth edges at every size


def draw() -> Image.Image:
    scale = SUPERSAMPLE / 32
    image = Image.new("RGBA", (SUPERSAMPLE, SUPERSAMPLE), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.rounded_rectangle((0, 0, SUPERSAMPLE - 1, SUPERSAMPLE - 1), radius=7 * scale, fill=BLUE)
    pen.polygon([(x * scale, y * scale) for x, y in TAG], fill=WHITE)
    cx, cy, r = (v * scale for v in HOLE)
    pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=BLUE)
    return image


if __name__ == "__main__":
    draw().save(STATIC / "favicon.ico", sizes=[(16, 16), (32, 32), (48, 48)])
    print(f"wrote {STATIC / 'favicon.ico'}")
