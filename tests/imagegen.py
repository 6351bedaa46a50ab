"""Image files for tests: real photos, every format we accept, and broken or hostile files.

Everything is made here or comes from installed packages (scikit-learn, scikit-image);
nothing is downloaded.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def real_photos() -> dict[str, np.ndarray]:
    """Real photographs shipped inside scikit-learn and scikit-image (no download)."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    photos = {"china": load_sample_image("china.jpg"), "flower": load_sample_image("flower.jpg")}
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        photos[name] = getattr(data, name)()
    return photos


def photo_mosaic(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A large RGB image with real photographic detail: real photos tiled at full size.

    Upscaling one photo would make a large but smooth image; decoding and resizing
    differences show on fine detail, which this keeps.
    """
    photos = list(real_photos().values())
    rng = np.random.default_rng(seed)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    top = 0
    while top < height:
        left, row_height = 0, 0
        while left < width:
            photo = photos[int(rng.integers(len(photos)))]
            tile = photo[: height - top, : width - left]
            canvas[top : top + tile.shape[0], left : left + tile.shape[1]] = tile[..., :3]
            left += tile.shape[1]
            row_height = max(row_height, tile.shape[0])
        top += row_height
    return canvas


def gradient(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """A smooth RGB image that differs with ``seed`` (distinct bytes per seed)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = rng.integers(0, 255, size=3)
    rgb = np.stack([(x * 255 // width + base[0]) % 256, (y * 255 // height + base[1]) % 256,
                    ((x + y) * 255 // (width + height) + base[2]) % 256], axis=-1)
    return rgb.astype(np.uint8)


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def exif_rotated_jpeg(width: int = 300, height: int = 200, orientation: int = 6) -> bytes:
    """A landscape-stored JPEG whose EXIF says 'rotate 90°' (displayed as portrait)."""
    image = Image.fromarray(gradient(width, height, seed=42))
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", exif=exif.tobytes())


def format_zoo() -> dict[str, bytes]:
    """One good file per format and mode we promise to import, with distinct bytes each."""
    rgb = Image.fromarray(gradient(seed=1))
    rgba = Image.fromarray(gradient(seed=2)).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    palette = Image.fromarray(gradient(seed=3)).convert("P", palette=Image.Palette.ADAPTIVE)
    palette_transparent = palette.copy()
    palette_transparent.info["transparency"] = 0
    sixteen = Image.fromarray((np.linspace(0, 65535, 240 * 320).reshape(240, 320))
                              .astype(np.uint16))
    cmyk = Image.fromarray(gradient(seed=4)).convert("CMYK")
    frames = [Image.fromarray(gradient(seed=s)).convert("P") for s in (5, 6, 7)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return {
        "photo.jpg": encode(rgb, "JPEG", quality=90),
        "alpha.png": encode(rgba, "PNG"),
        "palette.png": encode(palette, "PNG"),
        "palette_transparent.png": encode(palette_transparent, "PNG", transparency=0),
        "animated.gif": gif.getvalue(),
        "image.webp": encode(Image.fromarray(gradient(seed=8)), "WEBP", quality=80),
        "image.bmp": encode(Image.fromarray(gradient(seed=9)), "BMP"),
        "image.tiff": encode(Image.fromarray(gradient(seed=10)), "TIFF"),
        "sixteen_bit.png": encode(sixteen, "PNG"),
        "cmyk.jpg": encode(cmyk, "JPEG"),
        "exif_rotated.jpg": exif_rotated_jpeg(),
    }


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    row = b"\x00" + b"\x00" * width
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(
        b"IEND", b"")


def bad_files() -> dict[str, bytes]:
    """Files that must be refused, each with a different failure."""
    good = encode(Image.fromarray(gradient(seed=11)), "JPEG")
    return {
        "empty.jpg": b"",
        "notes.jpg": b"These are my holiday notes, not a picture.\n" * 10,
        "page.png": b"<html><script>alert('x')</script></html>",
        "vector.png": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "truncated.jpg": good[: len(good) // 2],
        "corrupt.png": encode(Image.fromarray(gradient(seed=12)), "PNG")[:60] + b"\x00" * 200,
        "bomb.png": png_bomb(),
    }


def write_files(folder: Path, files: dict[str, bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths


def hostile_zip(path: Path) -> Path:
    """A zip with one good image, zip-slip and absolute entries, a bomb and a nested zip."""
    good = encode(Image.fromarray(gradient(seed=13)), "PNG")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("good/inside.png", good)
        archive.writestr("../../escape.png", good)
        archive.writestr("/etc/absolute.png", good)
        archive.writestr("bomb.bmp", b"\x00" * 50_000_000)  # ~1000:1
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as nested:
            nested.writestr("x.png", good)
        archive.writestr("nested.zip", inner.getvalue())
    return path


def digits_folder(root: Path, classes: dict[int, str], per_class: int) -> Path:
    """Real hand-written digits from scikit-learn as 64×64 PNGs, one folder per class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    counts = dict.fromkeys(classes, 0)
    for pixels, target in zip(digits.images, digits.target, strict=True):
        if target in classes and counts[target] < per_class:
            image = Image.fromarray((pixels * 255 / 16).astype(np.uint8)).resize((64, 64))
            (root / classes[target]).mkdir(parents=True, exist_ok=True)
            image.save(root / classes[target] / f"{counts[target]}.png")
            counts[target] += 1
    return root
