"""A corpus of hostile and odd input files, generated on demand (nothing binary is committed).

``build_corpus(directory)`` writes every file into ``directory`` and returns ``CASES``: one
``Case`` per item the importer reports on: a loose file is one case, each zip entry one.
Each case says whether it must be imported or refused, the words the refusal must contain,
and for accepted files how they must be normalised (stored size, thumbnail colours).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

RGB = tuple[int, int, int]

RED: RGB = (220, 30, 30)
GREEN: RGB = (30, 200, 40)
BLUE: RGB = (30, 40, 220)
WHITE: RGB = (255, 255, 255)

UNICODE_NAME = "Ünïcødé 海 🌊.png"
LONG_NAME = "n" * 251 + ".png"  # 255 bytes: the longest name most file systems allow
# No '/' (illegal in a file name) and no '"' (multipart cannot carry it the same way in
# every client: browsers send %22, werkzeug's test client a bare quote).
HTML_NAME = "<img src=x onerror=alert(1)> & 'q'.png"


@dataclass(frozen=True)
class Pixel:
    """A thumbnail pixel, at a fraction of the width and height, that must be near ``rgb``."""

    x: float
    y: float
    rgb: RGB


@dataclass(frozen=True)
class Expect:
    """How an accepted file must be stored: oriented size, format and thumbnail colours."""

    width: int
    height: int
    format: str
    pixels: tuple[Pixel, ...] = ()


@dataclass(frozen=True)
class Case:
    """One item of the corpus.

    Attributes:
        file: the file written into the corpus folder (and uploaded as such).
        entry: the entry inside ``file`` when it is a zip, else "".
        accept: whether the item must be imported.
        reason: for refusals, a substring of the reason reported to the user.
        expect: for accepted items, the normalisation the stored image must show.
    """

    file: str
    accept: bool
    reason: str = ""
    entry: str = ""
    expect: Expect | None = field(default=None)

    @property
    def name(self) -> str:
        """The name the importer reports, relative to the corpus folder or the upload."""
        return f"{self.file}!{self.entry}" if self.entry else self.file

    @property
    def id(self) -> str:
        """A short, printable test id."""
        return self.name if len(self.name) < 40 else self.name[:20] + "…" + self.name[-12:]


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _solid(rgb: RGB, size: tuple[int, int] = (64, 48)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def _png(width: int, height: int, bit_depth: int, rows: bytes) -> bytes:
    """A greyscale PNG from raw filtered rows (lets a header claim any size)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows, 9)) + _png_chunk(b"IEND", b""))


def decompression_bomb_png(side: int = 9500) -> bytes:
    """A complete, valid 1-bit PNG of side² pixels (just above Pillow's limit) in ~10 kB."""
    row = b"\x00" + bytes((side + 7) // 8)
    return _png(side, side, 1, row * side)


def huge_header_png(side: int = 20000) -> bytes:
    """A PNG whose header claims side×side pixels but carries almost no data."""
    return _png(side, side, 8, (b"\x00" + bytes(side)) * 4)


def truncated_jpeg() -> bytes:
    rng = np.random.default_rng(7)  # noise: a JPEG big enough that half of it is clearly cut
    whole = _encode(Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)),
                    "JPEG", quality=90)
    return whole[: len(whole) // 2]


def animated_gif() -> bytes:
    frames = [_solid(c).convert("P") for c in (RED, GREEN, BLUE)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100,
                   loop=0)


def cmyk_jpeg() -> bytes:
    return _encode(_solid(BLUE).convert("CMYK"), "JPEG", quality=95)


def sixteen_bit_png() -> bytes:
    """A 16-bit greyscale ramp from black (left) to 65535 (right)."""
    ramp = np.tile(np.linspace(0, 65535, 64), (48, 1)).astype(np.uint16)
    return _encode(Image.fromarray(ramp), "PNG")


def palette_transparent_png() -> bytes:
    """Left half transparent (palette index 0), right half opaque green."""
    image = Image.new("P", (64, 48), 0)
    image.putpalette([0, 0, 0, *GREEN] + [0] * 762)
    image.paste(1, (32, 0, 64, 48))
    return _encode(image, "PNG", transparency=0)


def exif_rotated_jpeg() -> bytes:
    """Stored 80×40 landscape, red on the left; EXIF orientation 6 shows it as 40×80."""
    image = _solid(BLUE, (80, 40))
    image.paste(RED, (0, 0, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display: the red half ends up on top
    return _encode(image, "JPEG", quality=95, exif=exif.tobytes())


def _zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _accepted(file: str, expect: Expect, entry: str = "") -> Case:
    return Case(file, True, entry=entry, expect=expect)


def _refused(file: str, reason: str, entry: str = "") -> Case:
    return Case(file, False, reason, entry=entry)


CASES: list[Case] = [
    _refused("empty.jpg", "empty file"),
    _refused("truncated.jpg", "truncated"),
    _refused("notes.jpg", "not an image"),
    _refused("page.png", "not an image"),
    _refused("vector.png", "not an image"),
    _refused("bomb.png", "pixel limit"),
    _refused("header_20000.png", "pixel limit"),
    _accepted("animated.gif", Expect(64, 48, "GIF", (Pixel(0.5, 0.5, RED),))),
    _accepted("cmyk.jpg", Expect(64, 48, "JPEG", (Pixel(0.5, 0.5, BLUE),))),
    _accepted("sixteen_bit.png", Expect(64, 48, "PNG", (
        Pixel(0.02, 0.5, (0, 0, 0)), Pixel(0.98, 0.5, WHITE)))),
    _accepted("palette_transparent.png", Expect(64, 48, "PNG", (
        Pixel(0.2, 0.5, WHITE), Pixel(0.8, 0.5, GREEN)))),
    _accepted("exif_rotated.jpg", Expect(40, 80, "JPEG", (
        Pixel(0.5, 0.2, RED), Pixel(0.5, 0.8, BLUE)))),
    _accepted(UNICODE_NAME, Expect(40, 30, "PNG", (Pixel(0.5, 0.5, RED),))),
    _accepted(LONG_NAME, Expect(30, 40, "PNG", (Pixel(0.5, 0.5, BLUE),))),
    _accepted(HTML_NAME, Expect(50, 20, "PNG", (Pixel(0.5, 0.5, GREEN),))),
    _accepted("hostile.zip", Expect(64, 48, "PNG", (Pixel(0.5, 0.5, GREEN),)),
              entry="good/inside.png"),
    _refused("hostile.zip", "zip-slip", entry="../evil.png"),
    _refused("hostile.zip", "absolute path", entry="/etc/absolute.png"),
    _refused("hostile.zip", "zip-slip", entry="..\\windows.png"),
    _refused("hostile.zip", "absolute path", entry="C:/drive.png"),
    _refused("hostile.zip", "zip bomb", entry="bomb.bmp"),
    _refused("hostile.zip", "archive inside an archive", entry="nested.zip"),
    _refused("zipbomb.zip", "zip bomb", entry="zeros.bmp"),
]


def build_corpus(directory: Path) -> list[Case]:
    """Write the hostile corpus into ``directory`` and return its cases, in file order."""
    directory.mkdir(parents=True, exist_ok=True)
    good = _encode(_solid(GREEN), "PNG")
    files: dict[str, bytes] = {
        "empty.jpg": b"",
        "truncated.jpg": truncated_jpeg(),
        "notes.jpg": b"These are my holiday notes, not a picture.\n" * 10,
        "page.png": b"<!doctype html><html><script>alert('x')</script></html>",
        "vector.png": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
                      b"</svg>",
        "bomb.png": decompression_bomb_png(),
        "header_20000.png": huge_header_png(),
        "animated.gif": animated_gif(),
        "cmyk.jpg": cmyk_jpeg(),
        "sixteen_bit.png": sixteen_bit_png(),
        "palette_transparent.png": palette_transparent_png(),
        "exif_rotated.jpg": exif_rotated_jpeg(),
        UNICODE_NAME: _encode(_solid(RED, (40, 30)), "PNG"),
        LONG_NAME: _encode(_solid(BLUE, (30, 40)), "PNG"),
        HTML_NAME: _encode(_solid(GREEN, (50, 20)), "PNG"),
        "hostile.zip": _zip_of({
            "good/inside.png": good,
            "../evil.png": good,
            "/etc/absolute.png": good,
            "..\\windows.png": good,
            "C:/drive.png": good,
            "bomb.bmp": b"\x00" * 5_000_000,  # ~1000:1, refused from the directory alone
            "nested.zip": _zip_of({"x.png": good}),
        }),
        "zipbomb.zip": _zip_of({"zeros.bmp": b"\x00" * 20_000_000}),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return CASES
