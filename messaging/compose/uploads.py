"""Files entering compose: a browser upload or a file on disk, size-checked, then checked and
normalised by messaging/compose/media/; and photos fitted to RingCentral's budget.

Both run in a child process under the media limits (media/isolation.py), so that a hostile
file costs the process that received it (a web worker, the command line) nothing but a wait:
``COMPOSE_MEDIA_MEMORY_LIMIT`` bytes and ``COMPOSE_MEDIA_TIME_LIMIT`` CPU seconds for each
file, and images over ``COMPOSE_IMAGE_MAX_PIXELS`` refused from their header.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path

from django.conf import settings

from messaging.compose import media
from messaging.compose.media import isolation
from messaging.ringcentral import limits

log = logging.getLogger(__name__)


def max_file_bytes() -> int:
    return settings.COMPOSE_MAX_FILE_BYTES


def image_budget() -> media.Budget:
    """What decoding one image may cost: the pixels setting, and most of the memory the child
    process has (the rest is the interpreter and the libraries)."""
    return media.Budget(
        pixels=settings.COMPOSE_IMAGE_MAX_PIXELS,
        memory=settings.COMPOSE_MEDIA_MEMORY_LIMIT * 4 // 5,
    )


def step_limits() -> isolation.Limits:
    cpu = settings.COMPOSE_MEDIA_TIME_LIMIT
    # Wall-clock time allows for a busy machine (the CPU limit is the one that counts), and
    # stays below gunicorn's 30 s with the default limit, so the page gets the answer.
    return isolation.Limits(
        memory=settings.COMPOSE_MEDIA_MEMORY_LIMIT, cpu_seconds=cpu, wall_seconds=2 * cpu + 5
    )


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


def ingest_source(
    name: str, source: str | bytes, *, strip_metadata: bool = True, on_usage=None
) -> media.MediaFile:
    """Check the file at ``source`` (a path, or its bytes) in a child process under the media
    limits. Raises ``media.MediaError``."""
    return isolation.run(
        isolation.ingest_source,
        name,
        source,
        strip_metadata,
        image_budget(),
        limits=step_limits(),
        name=media.clean_filename(name),
        on_usage=on_usage,
    )


def thumbnail_in_child(name: str, data: bytes) -> bytes | None:
    """A preview of a picture that came from outside (a received MMS file), made in a child
    process under the media limits like every other decode; None when there is none."""
    try:
        return isolation.run(
            isolation.thumbnail_source,
            data,
            image_budget(),
            limits=step_limits(),
            name=media.clean_filename(name),
            what="preview",
        )
    except media.MediaError as exc:
        log.info("No preview of %s: %s", media.clean_filename(name), exc)
        return None


def ingest_upload(uploaded, *, strip_metadata: bool = True) -> media.MediaFile:
    """Check one Django ``UploadedFile``. Raises ``media.MediaError``.

    A large upload is already in a temporary file (Django spools it there); the child reads it
    from that path, so its bytes never pass through this process' memory."""
    if uploaded.size is not None and uploaded.size > max_file_bytes():
        raise media.MediaError(file_too_large(uploaded.name, uploaded.size))
    spooled = getattr(uploaded, "temporary_file_path", None)
    if spooled is not None:
        return ingest_source(uploaded.name, spooled(), strip_metadata=strip_metadata)
    uploaded.seek(0)
    data = uploaded.read(max_file_bytes() + 1)
    if len(data) > max_file_bytes():
        raise media.MediaError(file_too_large(uploaded.name, len(data)))
    return ingest_source(uploaded.name, data, strip_metadata=strip_metadata)


def ingest_path(path: str | os.PathLike, *, strip_metadata: bool = True) -> media.MediaFile:
    """Check a file on disk (for the command line). Raises ``media.MediaError``."""
    path = Path(path)
    name = media.clean_filename(path.name)
    try:
        if path.is_file():
            size = path.stat().st_size
            if size > max_file_bytes():
                raise media.MediaError(file_too_large(name, size))
            return ingest_source(path.name, str(path.resolve()), strip_metadata=strip_metadata)
        with path.open("rb") as handle:
            data = handle.read(max_file_bytes() + 1)
    except IsADirectoryError:
        raise media.MediaError(f"“{path}” is a folder, not a file.") from None
    except FileNotFoundError:
        raise media.MediaError(f"“{path}” does not exist.") from None
    except PermissionError as error:
        raise media.MediaError(f"“{path}” cannot be read: {error.strerror or error}.") from None
    except OSError as error:
        raise media.MediaError(f"“{path}” cannot be read: {error.strerror or error}.") from None
    if len(data) > max_file_bytes():
        raise media.MediaError(file_too_large(name, len(data)))
    return ingest_source(path.name, data, strip_metadata=strip_metadata)


def fit_photos(files, *, on_usage=None) -> list[media.MediaFile]:
    """``media.fit_to_budget`` to RingCentral's budget, each photo shrunk in a child process
    under the media limits, as many side by side as there are cores. Raises FitError."""

    def shrink_all(jobs):
        with tempfile.TemporaryDirectory(prefix="mmsportal-fit-") as workdir:
            steps = []
            for file, target in jobs:
                light = replace(file, loader=None, _data=None, path=None, thumbnail=None)
                steps.append(
                    (
                        isolation.shrink_source,
                        (light, _source_of(file, workdir), target, image_budget()),
                        file.name,
                    )
                )
            results = isolation.run_all(steps, limits=step_limits(), what="fit", on_usage=on_usage)
        for (file, _), result in zip(jobs, results, strict=True):
            if isinstance(result, media.MediaFile):
                result.thumbnail = file.thumbnail
        return results

    return media.fit_to_budget(files, limits.MAX_ATTACHMENTS_BYTES, shrink_all=shrink_all)


def _source_of(file: media.MediaFile, workdir: str) -> str | bytes:
    """Where a child finds ``file``'s bytes: its local file, or a copy written to ``workdir``
    (small files travel as bytes). Bytes read from storage for this are not kept, so fitting
    many stored photos holds one at a time."""
    if file.path and os.path.isfile(file.path):
        return file.path
    data = file._data if file._data is not None else file.loader() if file.loader else file.data
    if len(data) <= isolation.INLINE_BYTES:
        return data
    copy = Path(workdir) / f"{len(os.listdir(workdir))}.bin"
    copy.write_bytes(data)
    return str(copy)
