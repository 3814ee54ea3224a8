"""What decoding an image will cost, read from its header before a pixel is decoded.

A few kilobytes can declare a 7,000 × 7,000 screen with 400 frames (a GIF), or a canvas that
the decoder allocates in full before the first frame (a WebP): the cost of a file is not its
size. So every image is measured here first, from the bytes of its structure, and refused when
it is over the ``Budget``:

- **pixels**: width × height of every frame, added up, is the work of decoding (an animation's
  frames are each composed on the whole screen);
- **frame pixels**: one picture may have at most ``MAX_IMAGE_PIXELS``;
- **memory**: the bytes the decoder holds at once — a frame at four bytes a pixel (how Pillow
  keeps colour images) times the buffers its format needs, plus the coefficients a progressive
  JPEG keeps for the whole picture whatever size it is decoded at.

GIF, PNG, WebP, TIFF and JPEG are measured from their bytes alone (frames counted by walking
the structure, never by decoding, and never past ``MAX_FRAMES`` + 1); HEIC, AVIF and BMP from
what Pillow read of their header (``from_image``).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from messaging.compose.media.files import MAX_FRAMES, MAX_IMAGE_PIXELS, MediaError, _damaged
from messaging.compose.media.rebuilding import END_OF_SCAN

# Pillow keeps a colour pixel in four bytes (RGB included), a grey or palette pixel in one.
BYTES_PER_PIXEL = 4
# Buffers of one frame a decoder holds at once: an animation keeps the composed screen, the
# previous one (for disposal) and the frame; a HEIC/AVIF decoder its own RGB copy next to
# Pillow's.
_BUFFERS = {"image/gif": 3, "image/webp": 3, "image/heic": 2, "image/heif": 2, "image/avif": 2}
# More scans than this in one JPEG serves no photo and multiplies the decoding work.
MAX_JPEG_SCANS = 100


@dataclass(frozen=True)
class Budget:
    """What checking or fitting one image may cost (settings: ``COMPOSE_IMAGE_MAX_PIXELS`` and
    the memory of the process that decodes, see messaging/compose/uploads.py)."""

    pixels: int = 100_000_000
    memory: int = 240_000_000


DEFAULT_BUDGET = Budget()


@dataclass(frozen=True)
class Cost:
    """An image's decoding cost. ``width`` × ``height`` is its largest frame (or screen)."""

    width: int
    height: int
    frames: int = 1
    pixels: int = 0
    memory: int = 0
    label: str = "image"

    @property
    def frame_pixels(self) -> int:
        return self.width * self.height


def _mp(pixels: float) -> str:
    return f"{pixels / 1e6:,.0f}" if pixels >= 10e6 else f"{pixels / 1e6:,.1f}"


def too_large(width: int, height: int) -> MediaError:
    return MediaError(
        f"{{name}} is {width:,} × {height:,} pixels ({width * height / 1e6:.0f} megapixels); "
        f"the most this portal accepts is {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels. "
        "Save a smaller copy of the picture and attach that."
    )


def too_many_frames(frames: int) -> MediaError:
    return MediaError(
        f"{{name}} is an animation of {frames:,} frames; the most this portal accepts is "
        f"{MAX_FRAMES:,}. Shorten it or send it as a video."
    )


def check(cost: Cost, budget: Budget) -> Cost:
    """Refuse an image whose cost is over ``budget`` (MediaError naming what is too much)."""
    if cost.width < 1 or cost.height < 1:
        raise _damaged(cost.label)
    if cost.frame_pixels > MAX_IMAGE_PIXELS:
        raise too_large(cost.width, cost.height)
    if cost.frames > MAX_FRAMES:
        raise too_many_frames(cost.frames)
    if cost.pixels > budget.pixels:
        raise MediaError(
            f"{{name}} is {cost.width:,} × {cost.height:,} pixels with {cost.frames:,} frames "
            f"({_mp(cost.pixels)} megapixels in all); the portal handles images of up to "
            f"{_mp(budget.pixels)} megapixels in all frames together. Shorten the animation or "
            "make it smaller."
        )
    if cost.memory > budget.memory:
        instead = "an ordinary (not progressive) JPEG" if "JPEG" in cost.label else "a JPEG"
        raise MediaError(
            f"{{name}} ({cost.label}, {cost.width:,} × {cost.height:,} pixels) needs about "
            f"{math.ceil(cost.memory / 1e6):,} MB of memory to open; the portal gives one file "
            f"{budget.memory // 1_000_000:,} MB. Save it as {instead} or a smaller copy, and "
            "attach that."
        )
    return cost


def _cost(mime: str, label: str, width: int, height: int, frames: int, extra: int = 0) -> Cost:
    buffers = _BUFFERS.get(mime, 1) if frames > 1 or mime not in ("image/gif", "image/webp") else 1
    return Cost(
        width=width,
        height=height,
        frames=frames,
        pixels=width * height * frames,
        memory=width * height * BYTES_PER_PIXEL * buffers + extra,
        label=label,
    )


def from_bytes(data: bytes, budget: Budget = DEFAULT_BUDGET) -> Cost | None:
    """The cost of a GIF, PNG, WebP, TIFF or JPEG from its bytes, checked against ``budget``;
    None for other formats (measured by ``from_image`` once Pillow has read the header).

    Raises MediaError when the structure does not add up or the cost is over the budget.
    """
    measure = next((m for signature, m in _MEASURES if data.startswith(signature)), None)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        measure = _webp
    if measure is None:
        return None
    try:
        measured = measure(data)
    except MediaError:
        raise
    except (struct.error, IndexError, ValueError):
        raise _damaged("image") from None
    return check(measured, budget)


def from_image(image, mime: str, label: str, budget: Budget = DEFAULT_BUDGET) -> Cost:
    """The cost of an image Pillow has opened (header only), checked against ``budget``."""
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise too_large(width, height)
    frames = getattr(image, "n_frames", 1) or 1
    return check(_cost(mime, label, width, height, frames), budget)


# GIF -------------------------------------------------------------------------------------------


def _gif(data: bytes) -> Cost:
    if len(data) < 13:
        raise _damaged("GIF image")
    width, height = struct.unpack("<HH", data[6:10])
    most = MAX_FRAMES
    packed = data[10]
    i = 13 + (3 * (2 ** ((packed & 7) + 1)) if packed & 0x80 else 0)
    n, frames = len(data), 0
    while i < n and frames <= most:
        block = data[i]
        if block == 0x3B:
            break
        if block == 0x2C:
            if i + 10 > n:
                raise _damaged("GIF image")
            frames += 1
            local = data[i + 9]
            i += 10 + (3 * (2 ** ((local & 7) + 1)) if local & 0x80 else 0) + 1
        elif block == 0x21:
            i += 2
        else:
            raise _damaged("GIF image")
        while True:  # data sub-blocks, each led by its length, ended by an empty one
            if i >= n:
                raise _damaged("GIF image")
            size = data[i]
            i += 1 + size
            if size == 0:
                break
    return _cost("image/gif", "GIF image", width, height, max(1, frames))


# PNG -------------------------------------------------------------------------------------------


def _png(data: bytes) -> Cost:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _damaged("PNG image")
    width, height = struct.unpack(">II", data[16:24])
    frames = 1
    # An APNG declares its frame count in acTL, before the first IDAT; that count is what
    # decoders (Pillow's too) go by.
    i, n = 8, len(data)
    while i + 8 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        if kind == b"acTL" and i + 12 <= n:
            frames = max(1, int.from_bytes(data[i + 8 : i + 12], "big"))
            break
        if kind in (b"IDAT", b"IEND"):
            break
        i += 12 + length
    return _cost("image/png", "PNG image", width, height, frames)


# WebP ------------------------------------------------------------------------------------------


def _webp(data: bytes) -> Cost:
    """Canvas size from VP8X (or the one bitstream's header), frames by counting ANMF chunks.

    Measured before Pillow opens the file: its decoder allocates two whole canvases on open.
    """
    if len(data) < 30 or data[8:12] != b"WEBP":
        raise _damaged("WebP image")
    kind = data[12:16]
    if kind == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
    elif kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        width, height = 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    elif kind == b"VP8 ":
        width = int.from_bytes(data[26:28], "little") & 0x3FFF
        height = int.from_bytes(data[28:30], "little") & 0x3FFF
    else:
        raise _damaged("WebP image")
    most = MAX_FRAMES
    frames, i, end = 0, 12, min(len(data), int.from_bytes(data[4:8], "little") + 8)
    while i + 8 <= end and frames <= most:
        size = int.from_bytes(data[i + 4 : i + 8], "little")
        if data[i : i + 4] == b"ANMF":
            frames += 1
        i += 8 + size + (size & 1)
    return _cost("image/webp", "WebP image", width, height, max(1, frames))


# TIFF ------------------------------------------------------------------------------------------


def _tiff(data: bytes) -> Cost:
    """Every page's size, walking the chain of image directories (a chain that loops is a
    damaged file)."""
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack(order + "H", data[2:4])[0] == 43
    if big:
        head, entry, count_fmt, offset_fmt = 16, 20, "Q", "Q"
        offset = struct.unpack(order + "Q", data[8:16])[0] if len(data) >= 16 else 0
    else:
        head, entry, count_fmt, offset_fmt = 8, 12, "H", "I"
        offset = struct.unpack(order + "I", data[4:8])[0] if len(data) >= 8 else 0
    count_size, offset_size = struct.calcsize(count_fmt), struct.calcsize(offset_fmt)
    seen: set[int] = set()
    pages, pixels, width, height = 0, 0, 0, 0
    while offset:
        if offset in seen or offset < head or offset + count_size > len(data):
            raise _damaged("TIFF image")
        seen.add(offset)
        count = struct.unpack(order + count_fmt, data[offset : offset + count_size])[0]
        start = offset + count_size
        if start + count * entry + offset_size > len(data):
            raise _damaged("TIFF image")
        page_w, page_h = 0, 0
        for k in range(count):
            at = start + k * entry
            tag, kind = struct.unpack(order + "HH", data[at : at + 4])
            if tag > 257:
                break  # entries are sorted by tag; width (256) and length (257) come first
            if tag in (256, 257):
                value_at = at + (12 if big else 8)
                value = (
                    struct.unpack(order + "H", data[value_at : value_at + 2])[0]
                    if kind == 3
                    else struct.unpack(order + "I", data[value_at : value_at + 4])[0]
                )
                page_w, page_h = (value, page_h) if tag == 256 else (page_w, value)
        pages += 1
        pixels += page_w * page_h
        if page_w * page_h > width * height:
            width, height = page_w, page_h
        if pages > MAX_FRAMES:
            break
        next_at = start + count * entry
        offset = struct.unpack(order + offset_fmt, data[next_at : next_at + offset_size])[0]
    if not pages:
        raise _damaged("TIFF image")
    return Cost(
        width=width,
        height=height,
        frames=pages,
        pixels=pixels,
        memory=width * height * BYTES_PER_PIXEL,
        label="TIFF image",
    )


# JPEG ------------------------------------------------------------------------------------------

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}


def _jpeg(data: bytes) -> Cost:
    """Size and components from the frame header; scans counted by walking the file.

    A JPEG in several scans (every progressive one) is decoded through a buffer of all its
    coefficients, two bytes for each sample of the full picture, whatever size it is decoded at.
    """
    n, i = len(data), 2
    width = height = 0
    components: list[tuple[int, int]] = []
    progressive, scans = False, 0
    while i < n:
        if data[i] != 0xFF:
            following = data.find(b"\xff", i)
            if following < 0:
                break
            i = following
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if i + 2 > n:
            break
        length = int.from_bytes(data[i : i + 2], "big")
        if marker in _SOF and i + 8 <= n:
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            progressive = marker in _PROGRESSIVE
            count = data[i + 7]
            components = [
                (data[at] >> 4, data[at] & 15) for at in range(i + 9, min(i + 9 + 3 * count, n), 3)
            ]
            if width * height > MAX_IMAGE_PIXELS:
                raise too_large(width, height)
        i += length
        if marker == 0xDA:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise MediaError(
                    f"{{name}} is a JPEG image built of more than {MAX_JPEG_SCANS} scans, which "
                    "no camera or editor makes and which takes very long to open. Save it again "
                    "as an ordinary JPEG."
                )
            # Skip the entropy-coded data, up to the marker that ends it.
            found = END_OF_SCAN.search(data, i)
            i = found.start() if found else n
    if not width or not height or not components:
        raise _damaged("JPEG image")
    extra = 0
    if progressive or scans > 1:
        h_max = max(h for h, _ in components) or 1
        v_max = max(v for _, v in components) or 1
        blocks = sum(
            math.ceil(math.ceil(width * h / h_max) / 8)
            * math.ceil(math.ceil(height * v / v_max) / 8)
            for h, v in components
        )
        extra = blocks * 64 * 2
    label = "progressive JPEG image" if progressive else "JPEG image"
    # Checking decodes a JPEG at an eighth of its size at most, fitting at about the size it
    # is sent at; the frame buffer counted here is the full one, which bounds both.
    return _cost("image/jpeg", label, width, height, 1, extra)


_MEASURES = (
    (b"GIF87a", _gif),
    (b"GIF89a", _gif),
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"II*\x00", _tiff),
    (b"MM\x00*", _tiff),
    (b"II+\x00", _tiff),
    (b"MM\x00+", _tiff),
    (b"\xff\xd8", _jpeg),
)
