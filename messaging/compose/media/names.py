"""File names that are safe to show, to send as a multipart filename and to save anywhere."""

from __future__ import annotations

import re
import unicodedata

from messaging.compose.media.files import MAX_NAME_CHARS
from messaging.ringcentral import limits

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
