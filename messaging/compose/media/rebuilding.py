"""JPEG, PNG, WebP and GIF copied without their metadata, segment by segment.

Nothing is decoded or re-encoded here, so the pixels and their quality stay exactly as they
were. Each rebuilder returns (bytes, metadata removed?, bytes of trailing data dropped) and
raises ``MediaError`` on a structure that ends early or does not add up.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable

from messaging.compose.media.files import _damaged

# The end of a scan's entropy-coded data: a 0xFF that is not a stuffed 0xFF00, a restart
# marker or fill before a marker (searched in C: a photo has thousands of stuffed bytes).
END_OF_SCAN = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")

_JPEG_KEEP = {0xE0: b"JFIF\0", 0xE2: b"ICC_PROFILE\0", 0xEE: b"Adobe"}


def _rebuild_jpeg(data: bytes) -> tuple[bytes, bool, int]:
    """Copy a JPEG keeping only what is needed to show it (JFIF, ICC profile, Adobe marker).

    Returns (bytes, metadata removed?, bytes of trailing data dropped). Raises on a structure
    that ends early.
    """
    n = len(data)
    out, i, removed = [b"\xff\xd8"], 2, False
    while True:
        if i < n and data[i] != 0xFF:
            # Stray bytes between segments: viewers skip them, and so do we (dropping them).
            following = data.find(b"\xff", i)
            if following < 0:
                raise _damaged("JPEG image")
            i, removed = following, True
        if i >= n:
            raise _damaged("JPEG image")
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            raise _damaged("JPEG image")
        marker = data[i]
        i += 1
        if marker == 0xD9:
            out.append(b"\xff\xd9")
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out.append(bytes((0xFF, marker)))
            continue
        if i + 2 > n:
            raise _damaged("JPEG image")
        length = int.from_bytes(data[i : i + 2], "big")
        if length < 2 or i + length > n:
            raise _damaged("JPEG image")
        segment = b"\xff" + bytes((marker,)) + data[i : i + length]
        i += length
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            signature = _JPEG_KEEP.get(marker)
            if signature and segment[4:].startswith(signature):
                out.append(segment)
            else:
                removed = True
            continue
        out.append(segment)
        if marker == 0xDA:
            start = i
            found = END_OF_SCAN.search(data, i)
            if found is None:
                raise _damaged("JPEG image")
            out.append(data[start : found.start()])
            i = found.start()
    return b"".join(out), removed, n - i


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = frozenset(
    b"IHDR PLTE IDAT IEND tRNS cHRM gAMA iCCP sBIT sRGB cICP mDCV cLLI bKGD hIST pHYs sPLT "
    b"acTL fcTL fdAT".split()
)


def _rebuild_png(data: bytes) -> tuple[bytes, bool, int]:
    """Copy a PNG keeping the chunks that describe pixels and colour; text, EXIF and time go."""
    if not data.startswith(_PNG_SIGNATURE):
        raise _damaged("PNG image")
    out, i, n, removed = [_PNG_SIGNATURE], 8, len(data), False
    while True:
        if i + 12 > n:
            raise _damaged("PNG image")
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            raise _damaged("PNG image")
        crc = int.from_bytes(data[end - 4 : end], "big")
        if zlib.crc32(data[i + 4 : end - 4]) != crc:
            raise _damaged("PNG image")
        if kind in _PNG_KEEP:
            out.append(data[i:end])
        else:
            removed = True
        i = end
        if kind == b"IEND":
            break
    return b"".join(out), removed, n - i


_WEBP_KEEP = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"})


def _rebuild_webp(data: bytes) -> tuple[bytes, bool, int]:
    """Copy a WebP without its EXIF and XMP chunks (and clear their flags in VP8X)."""
    if len(data) < 12:
        raise _damaged("WebP image")
    declared = int.from_bytes(data[4:8], "little") + 8
    if declared > len(data):
        raise _damaged("WebP image")
    chunks, i, removed = [], 12, False
    while i < declared:
        if i + 8 > declared:
            raise _damaged("WebP image")
        kind = data[i : i + 4]
        size = int.from_bytes(data[i + 4 : i + 8], "little")
        end = i + 8 + size + (size & 1)
        if i + 8 + size > declared:
            raise _damaged("WebP image")
        chunk = data[i : min(end, declared)]
        if kind in _WEBP_KEEP:
            if kind == b"VP8X" and size >= 1:
                chunk = chunk[:8] + bytes((chunk[8] & ~0x0C,)) + chunk[9:]
            chunks.append(chunk)
        else:
            removed = True
        i = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body, removed, len(data) - declared


def _gif_sub_blocks(data: bytes, i: int) -> int:
    n = len(data)
    while True:
        if i >= n:
            raise _damaged("GIF image")
        size = data[i]
        i += 1 + size
        if size == 0:
            return i


def _rebuild_gif(data: bytes) -> tuple[bytes, bool, int]:
    """Copy a GIF without comments and foreign application blocks (XMP lives there)."""
    n = len(data)
    if n < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
        raise _damaged("GIF image")
    packed = data[10]
    i = 13 + (3 * (2 ** ((packed & 7) + 1)) if packed & 0x80 else 0)
    out, removed = [data[:i]], False
    while True:
        if i >= n:
            raise _damaged("GIF image")
        block = data[i]
        if block == 0x3B:
            out.append(b"\x3b")
            i += 1
            break
        if block == 0x2C:
            if i + 10 > n:
                raise _damaged("GIF image")
            local = data[i + 9]
            start = i
            i += 10 + (3 * (2 ** ((local & 7) + 1)) if local & 0x80 else 0)
            i = _gif_sub_blocks(data, i + 1)
            out.append(data[start:i])
        elif block == 0x21:
            if i + 2 > n:
                raise _damaged("GIF image")
            label, start = data[i + 1], i
            i = _gif_sub_blocks(data, i + 2)
            application = data[start + 3 : start + 14]
            if label == 0xFE or (
                label == 0xFF and application not in (b"NETSCAPE2.0", b"ANIMEXTS1.0")
            ):
                removed = True
            else:
                out.append(data[start:i])
        else:
            raise _damaged("GIF image")
    return b"".join(out), removed, n - i


_REBUILDERS: dict[str, Callable[[bytes], tuple[bytes, bool, int]]] = {
    "image/jpeg": _rebuild_jpeg,
    "image/png": _rebuild_png,
    "image/webp": _rebuild_webp,
    "image/gif": _rebuild_gif,
}
