"""Attachment files: what they really are, names that are safe, and images that fit.

Three jobs, all pure (bytes in, bytes out; no database, no storage):

``ingest(name, data)``
    Checks one file and returns a ``MediaFile`` ready to store, or raises ``MediaError`` with a
    message for the user. Steps:

    1. The name is cleaned (``clean_filename``): path parts, control and bidirectional-override
       characters removed, length capped.
    2. The type is decided from the bytes only (``sniff``). The browser's claim is ignored, and
       the name's extension never makes a file acceptable: it only picks between two labels the
       content supports equally (CSV or plain text), and a name that claims another kind of file
       than the content (``invoice.jpg`` holding a program or a text) is refused. Programs and
       scripts are refused outright.
    3. Raster images are normalised: HEIC/HEIF/AVIF become JPEG, BMP/TIFF become PNG (phones
       show neither reliably), the EXIF orientation is applied to the pixels, and metadata —
       location, camera, thumbnails, comments, anything after the end of the image — is removed.
       JPEG, PNG, WebP and GIF are rebuilt segment by segment without re-encoding when their
       pixels need no turning, so quality is untouched. Every image is then decoded in full
       under a pixel cap, which catches truncated and damaged files and decompression bombs.
    4. Other files are never altered; PDFs must end properly (truncated or with data appended).

``fit_to_budget(files, budget)``
    Makes the files add up to at most ``budget`` bytes by scaling down and re-encoding the still
    raster images only, spending the budget across all of them: each image gets a share in
    proportion to its pixel count (images already below their share keep their size and their
    unused share goes to the others), then bytes left unused by the first round go back to the
    images that were reduced. Raises ``FitError`` when that cannot work.

``thumbnail(data)``
    A small JPEG preview of a raster image.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import re
import struct
import unicodedata
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import filetype
import pillow_heif
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

from . import limits

log = logging.getLogger(__name__)
pillow_heif.register_heif_opener()

# Largest image we decode. Phones take up to 48 MP; an image of this size needs about 150 MB
# decoded, and no more than a fraction of it survives fitting to the MMS budget anyway.
MAX_IMAGE_PIXELS = 50_000_000
# Pillow's own decompression-bomb guard, process-wide: it warns above this and refuses above
# twice this. The warning is turned into an error wherever this module decodes.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# A damaged image is an error for the user, never half an image sent on.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Longest side of a preview on the compose page.
THUMBNAIL_EDGE = 320
# The user-visible name is kept to this many characters (the extension included).
MAX_NAME_CHARS = 120
# Animated images with more frames than this are refused: decoding them all would take long.
MAX_FRAMES = 2000

# Fitting: JPEG quality tried first, the floor it may drop to, and the smallest useful image.
FIT_QUALITY = 82
FIT_MIN_QUALITY = 45
FIT_MIN_LONG_EDGE = 200
# Fitting stops once an image uses this share of its byte target, or after this many encodes.
FIT_GOOD_ENOUGH = 0.95
FIT_TRIES = 12
# Pixels of the trial encode that estimates how large a picture comes out.
PROBE_PIXELS = 250_000
# A share smaller than this cannot hold a useful photo; fitting refuses instead of sending stamps.
MIN_IMAGE_BYTES = 12_000

RASTER_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"}
)
# Not sendable as they are, but turned into a sendable type.
CONVERTIBLE_TYPES = {
    "image/heic": ("HEIC photo", "image/jpeg"),
    "image/heif": ("HEIF photo", "image/jpeg"),
    "image/avif": ("AVIF image", "image/jpeg"),
    "image/bmp": ("BMP image", "image/png"),
    "image/tiff": ("TIFF image", "image/png"),
}
# For <input type="file" accept>: what RingCentral takes plus what is converted on the way in.
ACCEPT = ",".join(
    [limits.ACCEPT, "image/heic", "image/heif", "image/avif", ".heic", ".heif", ".hif", ".avif"]
)


class MediaError(ValueError):
    """A file cannot be sent; ``message`` says why and what to do, naming the file."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class FitError(MediaError):
    """The files cannot be made to fit the budget."""


# --- Names --------------------------------------------------------------------------------------

_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$", re.IGNORECASE)
# Characters that break a file name on some system the recipient may save it to.
_NAME_UNSAFE = re.compile(r'[<>:"|?*]')


def clean_filename(name: str | None) -> str:
    """A name safe to show and to send as a multipart filename.

    Keeps only the last path component (``/`` and ``\\`` both count), removes control,
    format (e.g. right-to-left override), separator and surrogate characters, replaces
    characters Windows forbids, drops leading dots and caps the length at ``MAX_NAME_CHARS``
    while keeping the extension. Never empty: falls back to "attachment".
    """
    name = unicodedata.normalize("NFC", str(name or ""))
    name = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    kept = []
    for char in name:
        if char in "\t\n\r\x0b\x0c":
            kept.append(" ")
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            continue
        kept.append(" " if category == "Zs" else char)
    name = _NAME_UNSAFE.sub("_", " ".join("".join(kept).split()))
    name = name.strip(" .") if name.strip(" .") else ""
    if _WINDOWS_RESERVED.match(name):
        name = "_" + name
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 1 <= len(ext) <= 10 and stem:
            name = stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:MAX_NAME_CHARS].rstrip(" .")
    return name or "attachment"


def extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem and 1 <= len(ext) <= 10 else ""


def with_extension(name: str, mime: str, *, replace_known: bool = True) -> str:
    """``name`` with an extension that belongs to ``mime`` (kept if it already does).

    A recognised extension of another type is replaced ("photo.heic" becomes "photo.jpg"); any
    other ending is kept and the type's extension appended ("scan" becomes "scan.pdf").
    """
    media = limits.describe_type(mime)
    if media is None:
        return name
    ext = extension(name)
    if ext in media.extensions:
        return name
    known = {e for m in limits.SUPPORTED_TYPES for e in m.extensions} | _CONVERTIBLE_EXTENSIONS
    stem = name[: -len(ext)] if ext and replace_known and ext in known else name
    new = stem + media.extensions[0]
    return clean_filename(new) if len(new) > MAX_NAME_CHARS else new


_CONVERTIBLE_EXTENSIONS = {".heic", ".heif", ".avif", ".hif"}


# --- Sniffing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sniffed:
    """What a file's bytes say it is. ``refusal`` is set for things never sent (programs)."""

    mime: str
    label: str
    refusal: str = ""


_PROGRAM = "is a program, and programs cannot be sent"
_PROGRAM_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "Windows program"),
    (b"\x7fELF", "Linux program"),
    (b"\xfe\xed\xfa\xce", "macOS program"),
    (b"\xfe\xed\xfa\xcf", "macOS program"),
    (b"\xce\xfa\xed\xfe", "macOS program"),
    (b"\xcf\xfa\xed\xfe", "macOS program"),
    (b"\xca\xfe\xba\xbe", "Java class or macOS program"),
    (b"\x00asm", "WebAssembly program"),
    (b"dex\n", "Android program"),
    (b"L\x00\x00\x00\x01\x14\x02\x00", "Windows shortcut"),
)
# Programs inside a ZIP, judged by the entry's extension.
# fmt: off
_PROGRAM_EXTENSIONS = frozenset((
    ".exe", ".dll", ".scr", ".com", ".bat", ".cmd", ".msi", ".msp", ".ps1", ".psm1", ".vbs",
    ".vbe", ".js", ".jse", ".wsf", ".wsh", ".hta", ".cpl", ".jar", ".apk", ".app", ".dmg", ".pkg",
    ".sh", ".command", ".lnk", ".reg", ".msc", ".gadget", ".iso", ".img", ".vhd",
))
# fmt: on
# filetype's answers that are programs or installers.
_FILETYPE_PROGRAMS = {
    "application/x-msdownload": "Windows program",
    "application/x-executable": "Linux program",
    "application/x-shockwave-flash": "Flash program",
    "application/x-google-chrome-extension": "browser extension",
    "application/x-deb": "Debian package",
    "application/x-rpm": "RPM package",
    "application/wasm": "WebAssembly program",
    "application/vnd.ms-cab-compressed": "Windows cabinet installer",
}
# filetype's names mapped onto the ones RingCentral uses.
_FILETYPE_MIME = {
    "image/apng": "image/png",
    "audio/x-wav": "audio/wav",
    "video/x-msvideo": "video/avi",
    "video/x-m4v": "video/mp4",
}
_FRIENDLY = {
    "image/heic": "HEIC photo",
    "image/heif": "HEIF photo",
    "image/avif": "AVIF image",
    "video/x-matroska": "Matroska video",
    "video/3gpp2": "3GPP2 video",
    "audio/x-ms-wma": "Windows Media audio",
    "application/epub+zip": "e-book",
    "application/java-archive": "Java program",
    "application/vnd.android.package-archive": "Android app",
    "application/xml": "XML document",
}

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"heif"}
_AVIF_BRANDS = {b"avif", b"avis"}
_ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_ASF_VIDEO = bytes.fromhex("c0ef19bc4d5bcf11a8fd00805f5c442b")
_ASF_AUDIO = bytes.fromhex("409e69f84d5bcf11a8fd00805f5c442b")


def _label(mime: str) -> str:
    media = limits.describe_type(mime)
    if media is not None:
        return media.label
    return _FRIENDLY.get(mime) or f"{mime} file"


def _iso_bmff(data: bytes) -> str | None:
    """The type of an ISO base media file (MP4, MOV, 3GP, HEIC, AVIF) from its ftyp box."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return None
    box = int.from_bytes(data[0:4], "big")
    box = min(max(box, 16), len(data), 4096)
    major = data[8:12]
    brands = {major} | {data[i : i + 4] for i in range(16, box - 3, 4)}
    if major in _AVIF_BRANDS or (major not in _HEIC_BRANDS and brands & _AVIF_BRANDS):
        return "image/avif"
    if brands & _HEIC_BRANDS and not {b"qt  ", b"M4A ", b"M4V "} & {major}:
        return "image/heif" if major in (b"mif1", b"msf1", b"heif") else "image/heic"
    if major == b"qt  ":
        return "video/quicktime"
    if major in (b"M4A ", b"M4B ", b"M4P "):
        return "audio/mp4"
    if major.startswith(b"3g2"):
        return "video/3gpp2"
    handlers = _handlers(data)
    has_video = b"vide" in handlers
    if major.startswith((b"3gp", b"3ge", b"3gg", b"3gs", b"3gr")):
        return "video/3gpp" if has_video or not handlers else "audio/3gpp"
    if major in (b"M4V ", b"M4VH", b"M4VP"):
        return "video/mp4"
    if handlers and not has_video and b"soun" in handlers:
        return "audio/mp4"
    return "video/mp4"


def _handlers(data: bytes) -> set[bytes]:
    """Track handler types ('vide', 'soun', …) named by the hdlr boxes of an MP4/MOV file."""
    found, start = set(), 0
    while len(found) < 8:
        i = data.find(b"hdlr", start)
        if i < 0 or i + 16 > len(data):
            break
        found.add(data[i + 12 : i + 16])
        start = i + 4
    return found


def _riff(data: bytes) -> str | None:
    if len(data) < 12 or data[:4] != b"RIFF":
        return None
    return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/avi"}.get(
        data[8:12], "application/x-riff"
    )


def _ogg(data: bytes) -> str:
    head = data[:65536]
    if b"\x80theora" in head:
        return "video/ogg"
    if any(magic in head for magic in (b"\x01vorbis", b"OpusHead", b"Speex   ", b"\x7fFLAC")):
        return "audio/ogg"
    return "application/ogg"


def _zip(data: bytes) -> Sniffed:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            first = archive.infolist()[0] if names else None
            marker = b""
            if first is not None and first.filename == "mimetype" and first.file_size < 100:
                marker = archive.read(first)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError):
        raise MediaError(
            "{name} looks like a ZIP archive but is damaged or cut off. Create it again."
        ) from None
    lowered = {n.lower() for n in names}
    if "androidmanifest.xml" in lowered or "classes.dex" in lowered:
        return Sniffed("application/vnd.android.package-archive", "Android app", _PROGRAM)
    if "meta-inf/manifest.mf" in lowered:
        return Sniffed("application/java-archive", "Java program", _PROGRAM)
    if marker.startswith(b"application/epub"):
        return Sniffed("application/epub+zip", "e-book")
    if marker.startswith(b"application/vnd.oasis"):
        return Sniffed(marker.decode("ascii", "replace"), "OpenDocument file")
    if "[content_types].xml" in lowered:
        return Sniffed("application/vnd.openxmlformats", "Microsoft Office document")
    programs = sorted(n for n in names if extension(n.rstrip("/")) in _PROGRAM_EXTENSIONS)
    if programs:
        return Sniffed(
            "application/zip",
            "ZIP archive",
            f"contains a program ({clean_filename(programs[0])}), and programs cannot be sent",
        )
    return Sniffed("application/zip", "ZIP archive")


def _bmp_plausible(data: bytes) -> bool:
    if len(data) < 26 or data[:2] != b"BM":
        return False
    dib = int.from_bytes(data[14:18], "little")
    return data[6:10] == b"\0\0\0\0" and dib in (12, 16, 40, 52, 56, 64, 108, 124)


def sniff(data: bytes, name: str = "") -> Sniffed:
    """Decide a file's type from its bytes (see the module docstring for the rules).

    Returns the type even when RingCentral does not accept it, so the message can name it;
    raises ``MediaError`` (with ``{name}`` to fill in) for containers too damaged to tell.
    """
    if data.startswith(b"#!AMR"):
        return Sniffed("audio/amr", _label("audio/amr"))
    # Only binary content can be a program by signature: a letter that starts with "MZ" is not.
    binary = _decode_text(data[:4096]) is None
    for signature, label in _PROGRAM_SIGNATURES:
        if binary and data.startswith(signature):
            return Sniffed("application/octet-stream", label, _PROGRAM)
    if data.startswith(b"#!"):
        return Sniffed(
            "text/x-script", "script", "is a script (a program), and programs cannot be sent"
        )
    bmff = _iso_bmff(data)
    if bmff:
        return Sniffed(bmff, _label(bmff))
    riff = _riff(data)
    if riff:
        return Sniffed(riff, _label(riff))
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        mime = "video/webm" if b"webm" in data[:64] else "video/x-matroska"
        return Sniffed(mime, _label(mime))
    if data.startswith(b"OggS"):
        mime = _ogg(data)
        return Sniffed(mime, _label(mime))
    if data.startswith(_ASF_HEADER):
        head = data[:65536]
        mime = (
            "audio/x-ms-wma" if _ASF_AUDIO in head and _ASF_VIDEO not in head else "video/x-ms-wmv"
        )
        return Sniffed(mime, _label(mime))
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip(data)
    if data.startswith(b"BM") and not _bmp_plausible(data):
        return _sniff_text(data, name)
    # PDF readers accept the header anywhere in the first kilobyte, but text that merely
    # mentions it is still text.
    if data.lstrip(b" \t\r\n\0").startswith(b"%PDF-") or (binary and b"%PDF-" in data[:1024]):
        return Sniffed("application/pdf", _label("application/pdf"))
    if data.startswith(b"{\\rtf"):
        if b"\0" in data:
            return Sniffed("application/octet-stream", "binary file")
        return Sniffed("application/rtf", _label("application/rtf"))
    # Many binary signatures are printable ("ID3", "FLV"): a file that is text through and
    # through is text, whatever its first bytes spell.
    if not binary and _decode_text(data) is not None:
        return _sniff_text(data, name)
    kind = filetype.guess(data[:8192])
    if kind is not None:
        if kind.mime in _FILETYPE_PROGRAMS:
            return Sniffed(kind.mime, _FILETYPE_PROGRAMS[kind.mime], _PROGRAM)
        mime = _FILETYPE_MIME.get(kind.mime, kind.mime)
        label = _label(mime) if mime in _FRIENDLY or limits.is_supported(mime) else None
        return Sniffed(mime, label or f"{kind.extension.upper()} file")
    return _sniff_text(data, name)


# Text ------------------------------------------------------------------------------------------

_TEXT_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_XML_PROLOG = re.compile(
    r"\A(?:\s+|<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE\s+[^>\[]*(?:\[.*?\])?\s*>)*", re.S | re.I
)


def _decode_text(data: bytes) -> str | None:
    """The text of a file that is text through and through, else None."""
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = [("utf-8-sig", data)]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = [("utf-16", data)]
    else:
        if b"\0" in data:
            return None
        candidates = [("utf-8", data), ("cp1252", data)]
    for encoding, raw in candidates:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _TEXT_CONTROLS.search(text):
            return None
        return text
    return None


def _is_tabular(text: str) -> tuple[bool, int]:
    """Whether the text reads as CSV (every row the same number of fields, at least two)."""
    lines = [line for line in text.splitlines() if line.strip()][:200]
    if not lines:
        return False, 0
    for delimiter in (",", ";", "\t"):
        if delimiter not in lines[0]:
            continue
        try:
            rows = list(csv.reader(lines, delimiter=delimiter))
        except csv.Error:
            continue
        widths = {len(row) for row in rows}
        if len(widths) == 1 and widths.pop() >= 2:
            return True, len(rows)
    return False, 0


def _sniff_text(data: bytes, name: str) -> Sniffed:
    text = _decode_text(data)
    if text is None:
        return Sniffed("application/octet-stream", "file of unknown type")
    head = text.lstrip("\ufeff \t\r\n")
    upper = head[:200].upper()
    if head.startswith("#!"):
        return Sniffed(
            "text/x-script", "script", "is a script (a program), and programs cannot be sent"
        )
    if upper.startswith("BEGIN:VCARD") and "END:VCARD" in text.upper():
        return Sniffed("text/vcard", _label("text/vcard"))
    if upper.startswith("BEGIN:VCALENDAR") and "END:VCALENDAR" in text.upper():
        return Sniffed("text/calendar", _label("text/calendar"))
    if head.startswith("<"):
        prolog = head[: _XML_PROLOG.match(head[:20000]).end()]
        rest = head[len(prolog) :]
        if re.match(r"<(?:[\w.-]+:)?svg[\s>/]", rest):
            if re.search(r"<!ENTITY", prolog, re.I):
                return Sniffed(
                    "image/svg+xml",
                    _label("image/svg+xml"),
                    "declares XML entities, which can hide content or harm the reader; "
                    "export the SVG again without them",
                )
            return Sniffed("image/svg+xml", _label("image/svg+xml"))
        if re.match(r"<!DOCTYPE\s+html[\s>]", head, re.I) or re.match(
            r"<(?:html|head|body)[\s>]", rest, re.I
        ):
            return Sniffed("text/html", _label("text/html"))
        if head.startswith("<?xml"):
            return Sniffed("application/xml", _label("application/xml"))
    # Plain text and CSV cannot always be told apart (a one-row or ragged CSV is plain text
    # too): here, and only here, the name's extension decides.
    if extension(name) == ".csv":
        return Sniffed("text/csv", _label("text/csv"))
    tabular, rows = _is_tabular(text)
    if tabular and rows >= 2 and extension(name) != ".txt":
        return Sniffed("text/csv", _label("text/csv"))
    return Sniffed("text/plain", _label("text/plain"))


# --- Rebuilding images without their metadata ------------------------------------------------


def _damaged(kind: str) -> MediaError:
    return MediaError(
        "{name} is a damaged or incomplete " + kind + " (it may have been cut off while "
        "copying). Open it on your device and save or export it again."
    )


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
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    raise _damaged("JPEG image")
                following = data[j + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    i = j + 1 if following == 0xFF else j + 2
                    continue
                out.append(data[start:j])
                i = j
                break
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


# --- Decoding under guard ---------------------------------------------------------------------


def _too_large(width: int, height: int) -> MediaError:
    return MediaError(
        f"{{name}} is {width:,} × {height:,} pixels ({width * height / 1e6:.0f} megapixels); "
        f"the most this portal accepts is {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels. "
        "Save a smaller copy of the picture and attach that."
    )


def open_image(data: bytes) -> Image.Image:
    """Open image bytes lazily (header only) and refuse images above ``MAX_IMAGE_PIXELS``."""
    try:
        with warnings.catch_warnings():
            # Only the header is read here; the size check below gives the clearer message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise MediaError(
            "{name} declares an enormous picture size, which is refused to protect the server. "
            "Save a smaller copy of the picture and attach that."
        ) from None
    except Exception:  # noqa: BLE001 - any failure to parse hostile bytes means "damaged"
        raise _damaged("image") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise _damaged("image")
    if width * height > MAX_IMAGE_PIXELS:
        raise _too_large(width, height)
    return image


def _load(image: Image.Image, kind: str) -> None:
    """Decode every pixel (every frame of an animation), turning all failures into MediaError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            frames = getattr(image, "n_frames", 1)
            if frames > MAX_FRAMES:
                raise MediaError(
                    f"{{name}} is an animation of {frames:,} frames; the most this portal "
                    f"accepts is {MAX_FRAMES:,}. Shorten it or send it as a video."
                )
            for index in range(frames):
                if frames > 1:
                    image.seek(index)
                image.load()
            if frames > 1:
                image.seek(0)
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(*image.size) from None
    except Exception:  # noqa: BLE001 - any failure to decode hostile bytes means "damaged"
        raise _damaged(kind) from None


def _is_animated(image: Image.Image) -> bool:
    return bool(getattr(image, "is_animated", False)) and getattr(image, "n_frames", 1) > 1


def _orientation(image: Image.Image) -> int:
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged EXIF blocks; they are metadata we drop anyway.
            warnings.simplefilter("ignore")
            value = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is metadata we drop anyway
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _has_alpha(image: Image.Image) -> bool:
    """Whether any pixel is less than opaque (a PNG with an unused alpha channel is opaque)."""
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    ):
        alpha = image.convert("RGBA").getchannel("A")
        return alpha.getextrema()[0] < 255
    return False


def _flatten(image: Image.Image) -> Image.Image:
    """An RGB (or L) copy; transparent areas become white, as most phones would show them."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("CMYK", "YCbCr"):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] == 255:
        return rgba.convert("RGB")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _for_png(image: Image.Image) -> Image.Image:
    if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        return image
    if image.mode in ("I;16B", "I;16L", "I", "F"):
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("CMYK", "YCbCr"):
        return image.convert("RGB")
    return image.convert("RGBA")


# --- The file record ----------------------------------------------------------------------------


@dataclass
class MediaFile:
    """One checked attachment, ready to store and send.

    ``data`` holds the bytes as they will be sent; files already in storage (drafts) may pass
    a ``loader`` instead and are read only when their bytes are needed. ``stored_name`` is set
    while the bytes are the ones in storage under that name; changing them clears it.
    """

    name: str
    content_type: str
    size: int
    sha256: str
    original_size: int
    original_content_type: str = ""
    width: int | None = None
    height: int | None = None
    fittable: bool = False
    was_converted: bool = False
    was_resized: bool = False
    metadata_removed: bool = False
    notes: list[str] = field(default_factory=list)
    thumbnail: bytes | None = None
    stored_name: str | None = None
    thumbnail_name: str = ""
    loader: Callable[[], bytes] | None = field(default=None, repr=False)
    _data: bytes | None = field(default=None, repr=False)

    @property
    def data(self) -> bytes:
        if self._data is None:
            if self.loader is None:
                raise RuntimeError("MediaFile has neither bytes nor a loader")
            self._data = self.loader()
        return self._data

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def label(self) -> str:
        return _label(self.content_type)

    @classmethod
    def from_bytes(cls, name: str, content_type: str, data: bytes, **extra) -> MediaFile:
        extra.setdefault("original_size", len(data))
        return cls(
            name=name,
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            _data=data,
            **extra,
        )


def _named(error: MediaError, name: str) -> MediaError:
    """Fill the file's name into a message written with a ``{name}`` placeholder."""
    message = error.message.replace("{name}", f"“{name}”")
    return type(error)(message[0].upper() + message[1:] if message else message)


# --- Ingest -------------------------------------------------------------------------------------


def ingest(name: str | None, data: bytes, *, strip_metadata: bool = True) -> MediaFile:
    """Check and normalise one attached file (see the module docstring). Raises MediaError."""
    shown = clean_filename(name)
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata blocks (metadata we drop anyway); the pixel
            # guard does not rely on warnings (open_image checks the size itself).
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            return _ingest(shown, data, strip_metadata)
    except MediaError as error:
        raise _named(error, shown) from None
    except Exception:
        # Decoders meet hostile bytes here; whatever they raise, the user gets a refusal, not
        # a server error. Logged, because it also means a case the checks above did not name.
        log.warning("Unexpected failure while checking an attachment", exc_info=True)
        raise _named(_damaged("file"), shown) from None


def _violation(items, code: str) -> str:
    """The message limits.py writes for ``code`` about ``items``."""
    return next(v.message for v in limits.check_attachments(items) if v.code == code)


def _unsupported(name: str, sniffed: Sniffed) -> MediaError:
    message = _violation(
        [{"name": name, "size": 1, "content_type": sniffed.mime}], "unsupported_type"
    )
    return MediaError(message.replace(f"({sniffed.mime})", f"({sniffed.label})", 1))


# Kinds of file a name may mix up without suspicion: the content then decides, and the name is
# corrected. Anything else (a text or a program called .jpg) means the wrong file was attached.
_KINDS = {"audio": "media", "video": "media", "vcard": "document"}


def _check_name_matches(name: str, sniffed: Sniffed) -> None:
    """Refuse a name that claims a different kind of file than the content."""
    ext = extension(name)
    claimed = [(m.mime, m.label, m.category) for m in limits.SUPPORTED_TYPES if ext in m.extensions]
    if ext in _CONVERTIBLE_EXTENSIONS:
        claimed = [("image/heic", "HEIC or AVIF photo", "image")]
    if not claimed or any(mime == sniffed.mime for mime, _, _ in claimed):
        return
    actual = limits.describe_type(CONVERTIBLE_TYPES.get(sniffed.mime, ("", sniffed.mime))[1])
    claimed_kinds = {_KINDS.get(category, category) for _, _, category in claimed}
    if actual is not None and _KINDS.get(actual.category, actual.category) in claimed_kinds:
        return  # e.g. a PNG saved as .jpg: fine, the name is corrected to match
    raise MediaError(
        f"{{name}} is named like a {claimed[0][1]} but contains a {sniffed.label}. "
        "Rename it to match its content, or attach the file you meant."
    )


def _ingest(name: str, data: bytes, strip_metadata: bool) -> MediaFile:
    if not data:
        raise MediaError(
            _violation([{"name": name, "size": 0, "content_type": ""}], "empty_attachment")
        )
    sniffed = sniff(data, name)
    if sniffed.refusal:
        raise MediaError(f"{{name}} {sniffed.refusal}.")
    if sniffed.mime not in CONVERTIBLE_TYPES and not limits.is_supported(sniffed.mime):
        raise _unsupported(name, sniffed)
    _check_name_matches(name, sniffed)
    if sniffed.mime in RASTER_TYPES or sniffed.mime in CONVERTIBLE_TYPES:
        return _ingest_image(name, data, sniffed, strip_metadata)
    if sniffed.mime == "application/pdf":
        _check_pdf(data)
    return MediaFile.from_bytes(
        with_extension(name, sniffed.mime), sniffed.mime, data, original_content_type=sniffed.mime
    )


def _check_pdf(data: bytes) -> None:
    end = data.rfind(b"%%EOF")
    if end < 0:
        raise _damaged("PDF document")
    if data[end + 5 :].strip(b" \t\r\n\0"):
        raise MediaError(
            "{name} has data hidden after the end of the PDF document, so it is refused. "
            "Open it in a PDF viewer and save or print it to a new PDF."
        )


def _ingest_image(name: str, data: bytes, sniffed: Sniffed, strip_metadata: bool) -> MediaFile:
    notes: list[str] = []
    image = open_image(data)
    with image:
        width, height = image.size
        animated = _is_animated(image)
        orientation = 1 if animated else _orientation(image)
        target = CONVERTIBLE_TYPES.get(sniffed.mime, ("", sniffed.mime))[1]
        if target != sniffed.mime:
            # Converted: decode, turn upright, encode anew. Nothing of the old metadata survives.
            _load(image, sniffed.label)
            if animated:
                raise MediaError(
                    f"{{name}} is an animated {sniffed.label}, which cannot be converted here. "
                    "Send it as a GIF or a video instead."
                )
            upright = ImageOps.exif_transpose(image) or image
            out, metadata_removed = _encode_converted(image, upright, target, strip_metadata)
            width, height = upright.size
            notes.append(f"converted from {sniffed.label} to {_label(target)}")
            if orientation != 1:
                notes.append("turned upright")
            if metadata_removed:
                notes.append("location and camera details removed")
            result = MediaFile.from_bytes(
                with_extension(name, target),
                target,
                out,
                original_size=len(data),
                original_content_type=sniffed.mime,
                width=width,
                height=height,
                fittable=True,
                was_converted=True,
                metadata_removed=metadata_removed,
                notes=notes,
            )
            result.thumbnail = thumbnail(out)
            return result
        rebuilt, removed, trailing = _REBUILDERS[sniffed.mime](data)
        if orientation != 1 and not animated:
            _load(image, sniffed.label)
            upright = ImageOps.exif_transpose(image) or image
            out = _encode_upright(image, upright, sniffed.mime, strip_metadata, data)
            width, height = upright.size
            notes.append("turned upright")
            removed = True
        elif strip_metadata:
            out = rebuilt
        else:
            out = data[: len(data) - trailing] if trailing else data
            removed = False
    if trailing:
        notes.append(f"{limits.format_size(trailing)} of extra data after the image removed")
    if removed and strip_metadata:
        notes.append("location and camera details removed")
    checked = open_image(out)
    with checked:
        if checked.format == "JPEG":
            # Decoding at reduced scale still reads every byte of the entropy-coded data.
            checked.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        _load(checked, sniffed.label)
        fittable = not _is_animated(checked)
    result = MediaFile.from_bytes(
        with_extension(name, sniffed.mime),
        sniffed.mime,
        out,
        original_size=len(data),
        original_content_type=sniffed.mime,
        width=width,
        height=height,
        fittable=fittable,
        metadata_removed=bool(removed and strip_metadata) or bool(trailing),
        notes=notes,
    )
    result.thumbnail = thumbnail(out)
    return result


def _kept_exif(image: Image.Image) -> bytes | None:
    """The image's EXIF with the orientation reset, for callers who keep metadata."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exif = image.getexif()
    if not exif:
        return None
    exif[0x0112] = 1
    return exif.tobytes()


def _encode_converted(
    original: Image.Image, upright: Image.Image, target: str, strip_metadata: bool
) -> tuple[bytes, bool]:
    buffer = io.BytesIO()
    icc = original.info.get("icc_profile")
    extra = {} if strip_metadata or not _kept_exif(original) else {"exif": _kept_exif(original)}
    had_metadata = bool(original.info.get("exif") or original.info.get("xmp"))
    if target == "image/jpeg":
        _flatten(upright).save(buffer, "JPEG", quality=90, optimize=True, icc_profile=icc, **extra)
    else:
        _for_png(upright).save(buffer, "PNG", icc_profile=icc, **extra)
    return buffer.getvalue(), had_metadata and strip_metadata


def _encode_upright(
    original: Image.Image, upright: Image.Image, mime: str, strip: bool, data: bytes
) -> bytes:
    """Re-encode an image whose pixels were turned, as close to the original as the format
    allows: JPEG with its own quantisation tables and subsampling, PNG and lossless WebP
    losslessly."""
    buffer = io.BytesIO()
    icc = original.info.get("icc_profile")
    extra = {} if strip or not _kept_exif(original) else {"exif": _kept_exif(original)}
    if mime == "image/jpeg":
        options = {"qtables": original.quantization} if original.quantization else {"quality": 90}
        sampling = JpegImagePlugin.get_sampling(original)
        if sampling != -1:
            options["subsampling"] = sampling
        image = upright if upright.mode in ("RGB", "L", "CMYK") else _flatten(upright)
        image.save(buffer, "JPEG", icc_profile=icc, optimize=True, **options, **extra)
    elif mime == "image/webp":
        lossless = b"VP8L" in data[12:64]
        upright.save(buffer, "WEBP", lossless=lossless, quality=90, icc_profile=icc, **extra)
    elif mime == "image/gif":
        upright.save(buffer, "GIF")
    else:
        _for_png(upright).save(buffer, "PNG", icc_profile=icc, **extra)
    return buffer.getvalue()


def thumbnail(data: bytes) -> bytes | None:
    """A JPEG preview at most ``THUMBNAIL_EDGE`` pixels on its longer side, or None."""
    try:
        image = open_image(data)
        with image:
            if image.format == "JPEG":
                image.draft("RGB", (THUMBNAIL_EDGE, THUMBNAIL_EDGE))
            image.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            _flatten(image).convert("RGB").save(buffer, "JPEG", quality=80)
            return buffer.getvalue()
    except Exception:  # noqa: BLE001 - a preview is optional; the file itself was checked
        return None


# --- Fitting ------------------------------------------------------------------------------------


def _water_fill(total: int, caps: Sequence[int], weights: Sequence[float]) -> list[int]:
    """Share ``total`` in proportion to ``weights``; nobody gets more than their cap, and what
    a capped share leaves goes to the others."""
    allocation = [0] * len(caps)
    active = set(range(len(caps)))
    remaining = total
    while active:
        weight_sum = sum(weights[i] for i in active)
        capped = [i for i in active if caps[i] <= remaining * weights[i] / weight_sum]
        if not capped:
            for i in active:
                allocation[i] = int(remaining * weights[i] / weight_sum)
            break
        for i in capped:
            allocation[i] = caps[i]
            remaining -= caps[i]
            active.discard(i)
    return allocation


def _dimensions(size: tuple[int, int], pixels: float) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, math.sqrt(max(pixels, 1) / (width * height)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode_fitted(image: Image.Image, dims: tuple[int, int], fmt: str, quality: int) -> bytes:
    resized = (
        image
        if dims == image.size
        else image.resize(dims, Image.Resampling.LANCZOS, reducing_gap=2.0)
    )
    buffer = io.BytesIO()
    if fmt == "JPEG":
        resized.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True)
    else:
        resized.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def shrink(file: MediaFile, target: int) -> MediaFile:
    """``file`` scaled down and re-encoded to at most ``target`` bytes, as large as fits.

    Opaque images become JPEG; images with transparency stay PNG. Raises FitError when even
    the smallest useful version is too big.
    """
    image = open_image(file.data)
    with image:
        original_size = image.size
        # Never decode more pixels than could fit: at our quality a photo needs at least about
        # one byte per eight pixels, so larger decodes would be scaled away again.
        most_pixels = min(original_size[0] * original_size[1], target * 8)
        if image.format == "JPEG":
            image.draft("RGB", _dimensions(original_size, most_pixels))
        _load(image, file.label)
        alpha = _has_alpha(image)
        base = _for_png(image).convert("RGBA") if alpha else _flatten(image).convert("RGB")
    fmt = "PNG" if alpha else "JPEG"
    pixels = float(min(base.size[0] * base.size[1], most_pixels))
    # A first encode at a modest size tells how many bytes a pixel of this picture costs, so
    # that the search starts near the answer instead of encoding the whole picture.
    probe_dims = _dimensions(base.size, min(pixels, PROBE_PIXELS))
    probe = _encode_fitted(base, probe_dims, fmt, FIT_QUALITY)
    pixels = min(pixels, target / (len(probe) / (probe_dims[0] * probe_dims[1])) * 0.95)
    full = float(base.size[0] * base.size[1])
    quality, best, tried = FIT_QUALITY, None, set()
    # Pixel counts known to fit and known to be too big at this quality. Resampling changes how
    # well a picture compresses, so the size is not smooth in the pixel count: estimates that
    # leave this bracket are replaced by its middle, which keeps the search from oscillating.
    fits_at, too_big_at = 0.0, full + 1
    for _ in range(FIT_TRIES):
        dims = _dimensions(base.size, pixels)
        if (dims, quality) in tried:
            break
        tried.add((dims, quality))
        out = _encode_fitted(base, dims, fmt, quality)
        area = float(dims[0] * dims[1])
        if len(out) <= target:
            if best is None or len(out) > len(best[0]):
                best = (out, dims)
            fits_at = max(fits_at, area)
            if len(out) >= FIT_GOOD_ENOUGH * target or area >= full:
                break
            guess = pixels * target / len(out) * 0.99
        else:
            too_big_at = min(too_big_at, area)
            guess = pixels * target / len(out) * 0.95
            if best is None and max(_dimensions(base.size, guess)) < FIT_MIN_LONG_EDGE:
                if fmt == "JPEG" and quality > FIT_MIN_QUALITY:
                    # As small as is useful already: trade quality instead of size.
                    quality = max(FIT_MIN_QUALITY, quality - 15)
                    fits_at, too_big_at = 0.0, full + 1
                    continue
                smallest = FIT_MIN_LONG_EDGE**2 * full / max(base.size) ** 2
                if area <= smallest * 1.01:
                    break
                guess = smallest
        if fits_at and not fits_at < guess < too_big_at:
            guess = (fits_at + min(too_big_at, full)) / 2
        if too_big_at - fits_at < 0.01 * too_big_at:
            break
        pixels = min(guess, full)
    if best is None:
        raise FitError(
            f"“{file.name}” cannot be made small enough: the other files leave it only "
            f"{limits.format_size(target)}. Remove some files and try again."
        )
    out, dims = best
    mime = "image/png" if fmt == "PNG" else "image/jpeg"
    notes = [n for n in file.notes if not n.startswith(("reduced from", "converted to"))] + [
        f"reduced from {original_size[0]:,} × {original_size[1]:,} "
        f"({limits.format_size(file.size)}) to {dims[0]:,} × {dims[1]:,} "
        f"({limits.format_size(len(out))}) to fit"
    ]
    converted = mime != file.content_type
    if converted:
        notes.append(f"converted to {_label(mime)}")
    return replace(
        file,
        name=with_extension(file.name, mime),
        content_type=mime,
        size=len(out),
        sha256=hashlib.sha256(out).hexdigest(),
        width=dims[0],
        height=dims[1],
        was_converted=file.was_converted or converted,
        was_resized=True,
        metadata_removed=True,
        notes=notes,
        stored_name=None,
        loader=None,
        _data=out,
    )


def fit_to_budget(files: Sequence[MediaFile], budget: int) -> list[MediaFile]:
    """The files, in order, with still images reduced so that all add up to ``budget`` bytes.

    Files already within the budget come back unchanged. Only ``fittable`` files change.
    Raises FitError (with a message for the user) when the other files leave too little room.
    """
    files = list(files)
    if sum(f.size for f in files) <= budget:
        return files
    images = [i for i, f in enumerate(files) if f.fittable]
    fixed = sum(f.size for i, f in enumerate(files) if i not in images)
    available = budget - fixed
    if not images or available < MIN_IMAGE_BYTES * len(images):
        raise FitError(_fit_refusal(files, images, fixed, budget))
    weights = [max(1, (files[i].width or 1) * (files[i].height or 1)) for i in images]
    caps = [files[i].size for i in images]
    targets = _water_fill(available, caps, weights)
    results = {}
    for index, target in zip(images, targets, strict=True):
        results[index] = (
            files[index] if files[index].size <= target else shrink(files[index], target)
        )
    # Second round: bytes the first round left unused go back to the images that were reduced.
    spare = available - sum(r.size for r in results.values())
    reduced = [i for i in images if results[i] is not files[i]]
    if reduced and spare > 0.05 * available:
        extra = _water_fill(
            spare,
            [files[i].size - results[i].size for i in reduced],
            [weights[images.index(i)] for i in reduced],
        )
        for index, more in zip(reduced, extra, strict=True):
            if more > 0.1 * results[index].size:
                try:
                    candidate = shrink(files[index], results[index].size + more)
                except FitError:
                    continue
                if candidate.size > results[index].size:
                    results[index] = candidate
    fitted = [results.get(i, f) for i, f in enumerate(files)]
    if sum(f.size for f in fitted) > budget:  # pragma: no cover - each result is within its share
        raise FitError(_fit_refusal(files, images, fixed, budget))
    return fitted


def _fit_refusal(files: Sequence[MediaFile], images: list[int], fixed: int, budget: int) -> str:
    others = [f for i, f in enumerate(files) if i not in images]
    if not images:
        return _violation(files, "attachments_too_large")
    names = ", ".join(f"“{f.name}”" for f in others[:3]) + (" …" if len(others) > 3 else "")
    if fixed > budget:
        return (
            f"The files that cannot be made smaller ({names}) add up to "
            f"{limits.format_size(fixed)}, more than the {limits.format_size(budget)} RingCentral "
            f"accepts per message. Remove or shrink them to save at least "
            f"{limits.format_size(fixed - budget, round_up=True)}."
        )
    return (
        f"The files that cannot be made smaller ({names}) add up to {limits.format_size(fixed)}, "
        f"which leaves too little of the {limits.format_size(budget)} RingCentral accepts per "
        f"message for {len(images)} photo{'s' if len(images) != 1 else ''}. "
        "Remove some files and try again."
    )
