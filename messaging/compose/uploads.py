"""Files entering compose: a browser upload or a file on disk, size-checked, then checked and
normalised by messaging/compose/media/."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

from messaging.compose import media
from messaging.ringcentral import limits


def max_file_bytes() -> int:
    return settings.COMPOSE_MAX_FILE_BYTES


def sizes_apart(value: int, limit: int) -> tuple[str, str]:
    """Two sizes for one sentence, in bytes when rounding would make them look equal."""
    shown, shown_limit = limits.format_size(value), limits.format_size(limit)
    if shown == shown_limit:
        return f"{value:,} bytes", f"{limit:,} bytes ({shown_limit})"
    return shown, shown_limit


def file_too_large(name: str, size: int) -> str:
    shown, shown_limit = sizes_apart(size, max_file_bytes())
    return (
        f"“{media.clean_filename(name)}” is {shown}; this portal accepts files of up to "
        f"{shown_limit}. Send a smaller copy."
    )


def ingest_upload(uploaded, *, strip_metadata: bool = True) -> media.MediaFile:
    """Check one Django ``UploadedFile``. Raises ``media.MediaError``."""
    if uploaded.size is not None and uploaded.size > max_file_bytes():
        raise media.MediaError(file_too_large(uploaded.name, uploaded.size))
    uploaded.seek(0)
    data = uploaded.read(max_file_bytes() + 1)
    if len(data) > max_file_bytes():
        raise media.MediaError(file_too_large(uploaded.name, len(data)))
    return media.ingest(uploaded.name, data, strip_metadata=strip_metadata)


def ingest_path(path: str | os.PathLike, *, strip_metadata: bool = True) -> media.MediaFile:
    """Check a file on disk (for the command line). Raises ``media.MediaError``."""
    path = Path(path)
    name = media.clean_filename(path.name)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_file_bytes() + 1)
    except IsADirectoryError:
        raise media.MediaError(f"“{path}” is a folder, not a file.") from None
    except FileNotFoundError:
        raise media.MediaError(f"“{path}” does not exist.") from None
    except OSError as error:
        raise media.MediaError(f"“{path}” cannot be read: {error.strerror or error}.") from None
    if len(data) > max_file_bytes():
        raise media.MediaError(file_too_large(name, path.stat().st_size))
    return media.ingest(path.name, data, strip_metadata=strip_metadata)
