"""What every step shares: the checked-file record, the errors, and what is accepted.

``MediaFile`` is what ``ingest`` returns and ``fit_to_budget`` takes; ``MediaError`` (and its
``FitError``) carry the message the user sees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from messaging.ringcentral import limits

# Largest image we decode. Phones take up to 48 MP; an image of this size needs about 150 MB
# decoded, and no more than a fraction of it survives fitting to the MMS budget anyway.
MAX_IMAGE_PIXELS = 50_000_000
# Animated images with more frames than this are refused: decoding them all would take long.
MAX_FRAMES = 2000

# Longest side of a preview on the compose page.
THUMBNAIL_EDGE = 320
# The user-visible name is kept to this many characters (the extension included).
MAX_NAME_CHARS = 120

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


def _damaged(kind: str) -> MediaError:
    return MediaError(
        "{name} is a damaged or incomplete " + kind + " (it may have been cut off while "
        "copying). Open it on your device and save or export it again."
    )


def _violation(items, code: str) -> str:
    """The message messaging/ringcentral/limits.py writes for ``code`` about ``items``."""
    return next(v.message for v in limits.check_attachments(items) if v.code == code)


# Labels for types RingCentral does not take, so that a refusal can say what the file is.
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


def _label(mime: str) -> str:
    media = limits.describe_type(mime)
    if media is not None:
        return media.label
    return _FRIENDLY.get(mime) or f"{mime} file"


@dataclass
class MediaFile:
    """One checked attachment, ready to store and send.

    ``data`` holds the bytes as they will be sent; files already in storage (drafts) may pass
    a ``loader`` instead and are read only when their bytes are needed, and ``path`` when the
    storage keeps them in a local file (a child process then reads them from there).
    ``stored_name`` is set while the bytes are the ones in storage under that name; changing
    them clears it.
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
    path: str | None = field(default=None, repr=False)
    _data: bytes | None = field(default=None, repr=False)

    @property
    def data(self) -> bytes:
        if self._data is None:
            if self.loader is None:
                raise RuntimeError("MediaFile has neither bytes nor a loader")
            self._data = self.loader()
        return self._data

    @property
    def label(self) -> str:
        return _label(self.content_type)

    @classmethod
    def from_bytes(cls, name: str, content_type: str, data: bytes, **extra) -> MediaFile:
        extra.setdefault("original_size", len(data))
        return cls(name=name, content_type=content_type, **_described(data), **extra)

    def with_bytes(self, name: str, content_type: str, data: bytes, **changes) -> MediaFile:
        """This file made of other bytes (a re-encode), with ``changes`` to what it records.

        The bytes are no longer the stored ones, so the stored name no longer applies.
        """
        return replace(
            self,
            name=name,
            content_type=content_type,
            stored_name=None,
            loader=None,
            path=None,
            **_described(data),
            **changes,
        )


def _described(data: bytes) -> dict[str, Any]:
    """What a MediaFile records of its bytes: the bytes, their size and their hash."""
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "_data": data}
