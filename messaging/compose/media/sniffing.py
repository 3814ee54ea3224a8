"""A file's type, decided from its bytes alone (the package docstring gives the rules)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass

import filetype

from messaging.compose.media.files import _FRIENDLY, MediaError, _label
from messaging.compose.media.names import clean_filename, extension
from messaging.ringcentral import limits


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

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"heif"}
_AVIF_BRANDS = {b"avif", b"avis"}
_ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_ASF_VIDEO = bytes.fromhex("c0ef19bc4d5bcf11a8fd00805f5c442b")
_ASF_AUDIO = bytes.fromhex("409e69f84d5bcf11a8fd00805f5c442b")


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
    """Decide a file's type from its bytes (see the package docstring for the rules).

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
