"""Builders for attachment files in tests: real images made with Pillow and pillow-heif, and
minimal but well-formed documents of an exact size. No binary fixtures in the repository."""

from __future__ import annotations

import functools
import io
import os
import random
import struct
import zipfile
import zlib

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


# --- Hostile images: a few kilobytes that declare an enormous decode ------------------------------


def gif_screen_bomb(screen=(7000, 7000), frames=400) -> bytes:
    """An animated GIF of ``frames`` one-pixel frames on a ``screen``-sized logical screen:
    about 9 KB, and every frame is composed on the whole screen when decoded."""
    head = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\0\0\0"
    # Graphic control (10 ms), a 1×1 image at the origin, LZW data for one pixel of colour 0.
    frame = b"\x21\xf9\x04\x00\x01\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)
    frame += b"\x02\x02\x44\x01\x00"
    return head + loop + frame * frames + b"\x3b"


def png_solid(width=7000, height=7000, rgba=(30, 90, 160, 200)) -> bytes:
    """A one-colour RGBA PNG, written row by row (the test process never holds the pixels):
    a few hundred kilobytes that decode to width × height × 4 bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    row = b"\0" + bytes(rgba) * width
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose frame header declares ``width`` × ``height`` (the data stays as it was)."""
    out = bytearray(data)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = out.find(marker)
        if at > 0:
            out[at + 5 : at + 9] = struct.pack(">HH", height, width)
    return bytes(out)


def jpeg_progressive(width=64, height=48, subsampling=0) -> bytes:
    return encode(two_tone(width, height), "JPEG", progressive=True, subsampling=subsampling)


def jpeg_many_scans(scans=150) -> bytes:
    """A progressive JPEG whose last scan is repeated until it has ``scans`` scans."""
    data = jpeg_progressive()
    last = data.rfind(b"\xff\xda")
    scan = data[last:-2]
    return data[:-2] + scan * (scans - data.count(b"\xff\xda")) + b"\xff\xd9"


def webp_animated(frames=3, size=(16, 16)) -> bytes:
    images = [Image.new("RGB", size, (40 + i % 200, 20, 90)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(
        buffer, "WEBP", save_all=True, append_images=images[1:], duration=20, lossless=True
    )
    return buffer.getvalue()


def with_webp_canvas(data: bytes, width: int, height: int) -> bytes:
    """An extended WebP whose VP8X header declares a ``width`` × ``height`` canvas."""
    at = data.find(b"VP8X")
    out = bytearray(data)
    out[at + 12 : at + 18] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return bytes(out)


def heic_frames(frames=3, size=(64, 64)) -> bytes:
    images = [two_tone(*size) for _ in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "HEIF", save_all=True, append_images=images[1:], quality=50)
    return buffer.getvalue()


def with_heic_size(data: bytes, width: int, height: int) -> bytes:
    """A HEIC whose image items declare ``width`` × ``height`` (their ``ispe`` properties)."""
    out, start = bytearray(data), 0
    while (at := out.find(b"ispe", start)) >= 0:
        out[at + 8 : at + 16] = struct.pack(">II", width, height)
        start = at + 4
    return bytes(out)


def tiff_pages(pages=400, size=(7000, 7000)) -> bytes:
    """A TIFF of ``pages`` grey pages of ``size``, all pointing at one tiny deflated strip."""
    width, height = size
    strip = zlib.compress(b"\0" * 64)
    entries = 8
    ifd_size = 2 + entries * 12 + 4
    first = 8 + len(strip)
    out = bytearray(b"II*\0" + struct.pack("<I", first) + strip)
    for page in range(pages):
        at = first + page * ifd_size
        following = at + ifd_size if page < pages - 1 else 0
        fields = [
            (256, 4, 1, width),
            (257, 4, 1, height),
            (258, 3, 1, 8),
            (259, 3, 1, 8),  # deflate
            (262, 3, 1, 1),  # black is zero
            (273, 4, 1, 8),  # the strip, shared by every page
            (278, 4, 1, height),
            (279, 4, 1, len(strip)),
        ]
        out += struct.pack("<H", entries)
        for tag, kind, count, value in fields:
            out += struct.pack("<HHII", tag, kind, count, value)
        out += struct.pack("<I", following)
    return bytes(out)
