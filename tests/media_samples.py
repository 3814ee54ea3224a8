"""Builders for attachment files in tests: real images made with Pillow and pillow-heif, and
minimal but well-formed documents of an exact size. No binary fixtures in the repository."""

from __future__ import annotations

import functools
import io
import os
import random
import struct
import zipfile

import pillow_heif
from PIL import Image

pillow_heif.register_heif_opener()

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def exif(orientation: int | None = None, gps: bool = False, camera: str | None = None) -> bytes:
    data = Image.Exif()
    if orientation:
        data[ORIENTATION] = orientation
    if camera:
        data[0x010F] = camera
    if gps:
        # 37.7749 N, 122.4194 W as EXIF rationals.
        data[GPS_IFD] = {1: "N", 2: (37.0, 46.0, 29.64), 3: "W", 4: (122.0, 25.0, 9.84)}
    return data.tobytes()


def two_tone(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: orientation mistakes show in the pixels."""
    image = Image.new(mode, (width, height), (220, 30, 30) if mode != "L" else 80)
    image.paste((30, 30, 220) if mode != "L" else 200, (width // 2, 0, width, height))
    return image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def jpeg(width=64, height=48, *, orientation=None, gps=False, camera=None, quality=90) -> bytes:
    extra = {}
    if orientation or gps or camera:
        extra["exif"] = exif(orientation, gps, camera)
    return encode(two_tone(width, height), "JPEG", quality=quality, **extra)


def png(width=64, height=48, *, alpha=False, text: str | None = None) -> bytes:
    from PIL import PngImagePlugin

    image = two_tone(width, height, "RGBA" if alpha else "RGB")
    if alpha:
        image.putalpha(128)
    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("Comment", text)
    return encode(image, "PNG", pnginfo=info)


def heic(width=64, height=48, *, orientation=None, gps=False) -> bytes:
    extra = {"exif": exif(orientation, gps, "Phone")} if (orientation or gps) else {}
    return encode(two_tone(width, height), "HEIF", quality=80, **extra)


def avif(width=64, height=48) -> bytes:
    return encode(two_tone(width, height), "AVIF", quality=70)


def gif_animated(frames=3, size=(32, 32)) -> bytes:
    images = [Image.new("RGB", size, (40 + i * 60, 20, 200 - i * 50)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return buffer.getvalue()


@functools.lru_cache(maxsize=16)
def photo(width=4000, height=3000, seed=0, quality=88) -> bytes:
    """A photo-like JPEG: random colour blotches with fine grain, so it compresses like a real
    photo (several MB at 12 megapixels) rather than like a flat colour. Cached per arguments."""
    rng = random.Random(seed)
    small = (max(2, width // 40), max(2, height // 40))
    blotches = Image.frombytes("RGB", small, rng.randbytes(small[0] * small[1] * 3))
    base = blotches.resize((width, height), Image.Resampling.BICUBIC)
    return encode(Image.blend(base, _grain(width, height), 0.25), "JPEG", quality=quality)


@functools.lru_cache(maxsize=4)
def _grain(width: int, height: int) -> Image.Image:
    # Shared between photos of one size: generating noise is the slow part, and the random
    # blotches already make every photo different.
    return Image.effect_noise((width, height), 40).convert("RGB")


def pdf(size: int) -> bytes:
    """A small, well-formed PDF padded with a comment to exactly ``size`` bytes."""
    head = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    )
    tail = b"\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    padding = size - len(head) - len(tail) - 2
    assert padding >= 0, "too small for a PDF"
    return head + b"%" + b"x" * padding + b"\n" + tail


def text_file(size: int, line: str = "Meeting notes for Tuesday\n") -> bytes:
    """Plain text of exactly ``size`` bytes."""
    body = (line * (size // len(line) + 1)).encode()[:size]
    return body


def zip_file(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def windows_program() -> bytes:
    """The start of a PE executable: DOS header, stub, and a PE signature."""
    header = bytearray(128)
    header[0:2] = b"MZ"
    struct.pack_into("<I", header, 0x3C, 0x80)
    return bytes(header) + b"PE\0\0" + b"\x4c\x01" + os.urandom(64)


def mp4(video=True) -> bytes:
    """An ISO-BMFF file with an ftyp box and a track handler (enough for sniffing)."""
    ftyp = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2"
    handler = b"vide" if video else b"soun"
    hdlr = struct.pack(">I", 33) + b"hdlr" + b"\0" * 8 + handler + b"\0" * 13
    moov = struct.pack(">I", 8 + len(hdlr)) + b"moov" + hdlr
    return ftyp + moov + os.urandom(256)
