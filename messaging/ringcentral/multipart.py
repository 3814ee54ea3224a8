"""Build the body of a RingCentral send request, apart from sending it.

``build_message_request()`` returns a ``MessageRequest``: exactly the bytes that go on the wire,
their ``Content-Type`` and ``Content-Length``, and nothing about URLs, tokens or HTTP sessions.
The client executes it; tests read it without a network.

Wire format
    Without files: ``application/json`` with ``{"from": {"phoneNumber": …}, "to": [{"phoneNumber":
    …}, …], "text": …}``.
    With files: ``multipart/form-data``. The first part is that JSON (``name="json";
    filename="request.json"``, ``Content-Type: application/json``) because RingCentral reads the
    request from the root part; then one part per file, in the given order, each with
    ``name="attachment"``, a ``filename`` and the file's own ``Content-Type``.

Streaming
    The body is never held in memory as a whole: ``MessageRequest.body`` is a file-like object
    whose ``read(n)`` pulls file parts from storage in ``CHUNK_SIZE`` blocks while the request is
    being sent, so memory use does not grow with attachment size. It can be handed to
    ``requests`` as ``data=``: it reports its length (``__len__``/``tell``), so ``requests`` sends a
    ``Content-Length`` rather than chunked transfer encoding.
    ``seek(0)`` starts it again for a retry.

    The encoder is written here on the standard library rather than requests-toolbelt's
    ``MultipartEncoder``: that encoder formats the ``filename`` parameter its own way (no ASCII
    fallback beside ``filename*``), wants files already open when it is built (we open them only
    while sending, so a built request holds no handles) and cannot notice a file changing size
    under it.

Integrity
    Limits are checked again here with the sizes storage reports now; a file whose size differs
    from the one recorded at upload is refused (``AttachmentChanged``). If a file's bytes then
    differ from that size while streaming, ``read()`` raises ``AttachmentChanged`` — the send
    fails loudly instead of sending a body whose length does not match its ``Content-Length``.
    The boundary is random (128 bits, chosen after the files were uploaded); the streamer still
    watches for it inside file data and raises rather than send a body that would parse
    differently.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Protocol
from urllib.parse import quote

from messaging import limits

CHUNK_SIZE = 64 * 1024
JSON_PART_NAME = "json"
JSON_PART_FILENAME = "request.json"
ATTACHMENT_PART_NAME = "attachment"

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# What may appear in a header value we write: visible ASCII and spaces, nothing that ends a line.
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")


class AttachmentSource(Protocol):
    """What the builder needs of a file: a name, a MIME type, the recorded size and its bytes.

    ``size`` is what was recorded at upload (None if unknown); ``open()`` returns a new binary
    file object positioned at the start, e.g. ``storage.open(name, "rb")``.
    """

    filename: str
    content_type: str
    size: int | None

    def open(self) -> IO[bytes]: ...


@dataclass(frozen=True)
class StoredAttachment:
    """An ``AttachmentSource`` for a file kept in a Django storage backend."""

    storage: object
    name: str
    filename: str
    content_type: str
    size: int | None = None

    def open(self) -> IO[bytes]:
        return self.storage.open(self.name, "rb")


class AttachmentChanged(Exception):
    """A file differs from what was uploaded or checked; the message must not be sent as is.

    Permanent for this message: sending it again will not help until the file is replaced.
    """


@dataclass(frozen=True)
class MessageRequest:
    """One send request as it goes on the wire.

    ``body`` is read once per attempt (``requests.post(url, data=request.body, headers=
    request.headers)``); ``body.seek(0)`` rewinds it, though a retry had better build the
    request again so that limits and sizes are checked anew.
    """

    content_type: str
    content_length: int
    body: BodyStream

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, "Content-Length": str(self.content_length)}


@dataclass(frozen=True)
class _FileSegment:
    source: AttachmentSource
    size: int
    filename: str


class BodyStream(io.RawIOBase):
    """A read-only, forward-only file object over bytes segments and files opened on demand.

    ``read(n)`` returns at most ``n`` bytes and ``b""`` at the end. Only ``seek(0)`` (start over)
    and seeks to the current position are supported; that is all a retry needs.
    """

    def __init__(self, segments: Sequence[bytes | _FileSegment], length: int, boundary: bytes):
        super().__init__()
        self._segments = list(segments)
        self._length = length
        # The delimiter as it would appear inside a part; bare "--boundary" is enough to confuse
        # a parser at a line start, so that is what we look for.
        self._delimiter = b"--" + boundary if boundary else b""
        self._reset()

    def _reset(self) -> None:
        self._position = 0
        self._index = 0
        self._offset = 0  # within the current bytes segment
        self._file: IO[bytes] | None = None
        self._file_read = 0
        self._pending = b""
        self._pending_offset = 0
        self._tail = b""

    # -- io.RawIOBase ---------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self._position + offset}.get(whence)
        if target == self._position:
            return self._position
        if target == 0:
            self._close_file()
            self._reset()
            return 0
        raise io.UnsupportedOperation("a message body can only be rewound to its start")

    def __len__(self) -> int:
        return self._length

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed message body")
        if size is None or size < 0:
            # Whole-body reads defeat streaming; they exist for small bodies and tests.
            return b"".join(iter(lambda: self.read(CHUNK_SIZE), b""))
        out = bytearray()
        while len(out) < size:
            piece = self._next(size - len(out))
            if not piece:
                break
            out += piece
        self._position += len(out)
        return bytes(out)

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(CHUNK_SIZE), b"")

    def close(self) -> None:
        self._close_file()
        super().close()

    # -- segments ---------------------------------------------------------------------------

    def _next(self, limit: int) -> bytes:
        """Up to ``limit`` bytes from the current segment, moving on when it is used up."""
        while self._index < len(self._segments):
            segment = self._segments[self._index]
            if isinstance(segment, bytes):
                piece = segment[self._offset : self._offset + limit]
                if piece:
                    self._offset += len(piece)
                    return piece
            else:
                piece = self._next_from_file(segment, limit)
                if piece:
                    return piece
            self._index += 1
            self._offset = 0
        return b""

    def _next_from_file(self, segment: _FileSegment, limit: int) -> bytes:
        if self._pending_offset >= len(self._pending):
            if self._file is None:
                self._file = segment.source.open()
            # Let go of the previous chunk before reading the next: one chunk in memory at a time.
            self._pending = b""
            remaining = segment.size - self._file_read
            chunk = self._file.read(min(CHUNK_SIZE, remaining)) if remaining else b""
            if not chunk:
                self._finish_file(segment)
                return b""
            self._file_read += len(chunk)
            self._watch_for_boundary(chunk, segment)
            self._pending, self._pending_offset = chunk, 0
        # Hand out slices of the current chunk without copying the rest of it each time.
        start = self._pending_offset
        self._pending_offset = min(start + limit, len(self._pending))
        return self._pending[start : self._pending_offset]

    def _finish_file(self, segment: _FileSegment) -> None:
        """At the recorded size: the file must end exactly here."""
        read, self._file_read, self._tail = self._file_read, 0, b""
        short = read < segment.size
        longer = not short and self._file.read(1) != b""
        self._close_file()
        if short or longer:
            found = f"only {read:,}" if short else "more than"
            raise AttachmentChanged(
                f"“{segment.filename}” changed while it was being sent: expected "
                f"{segment.size:,} bytes, storage gave {found} bytes. Attach the file again."
            )

    def _watch_for_boundary(self, chunk: bytes, segment: _FileSegment) -> None:
        if not self._delimiter:
            return
        # Look inside the chunk and across the seam with the previous one, without copying it.
        seam = self._tail + chunk[: len(self._delimiter) - 1]
        if self._delimiter in chunk or self._delimiter in seam:
            raise AttachmentChanged(
                f"“{segment.filename}” contains this request's multipart boundary; "
                "send it again (a new boundary is chosen each time)."
            )
        self._tail = (self._tail + chunk[-(len(self._delimiter) - 1) :])[
            -(len(self._delimiter) - 1) :
        ]

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None


# --- Filenames ------------------------------------------------------------------------------

_FILENAME_MAX = 120


def _clean_filename(name: str) -> str:
    """The file's own name without directories, quotes, control characters or separators."""
    name = unicodedata.normalize("NFC", name or "")
    # Both separators, whatever the platform the name came from.
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        char
        for char in name
        if char not in '"\\/' and unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp")
    )
    name = name.strip(" .") if name.strip(" .") else ""
    if len(name) > _FILENAME_MAX:
        stem, ext = os.path.splitext(name)
        name = stem[: _FILENAME_MAX - len(ext)] + ext if len(ext) < 16 else name[:_FILENAME_MAX]
    return name


def _ascii_fallback(name: str) -> str:
    """A plain-ASCII stand-in for ``name``: accents dropped, other characters replaced by "_"."""

    def ascii_only(text: str) -> str:
        chars = []
        for char in unicodedata.normalize("NFKD", text):
            if unicodedata.combining(char):
                continue
            chars.append(char if " " <= char <= "~" and char not in '"\\/%;' else "_")
        return re.sub(r"_+", "_", "".join(chars))

    stem, ext = os.path.splitext(name)
    stem = ascii_only(stem).strip(" ._")
    ext = ascii_only(ext)
    if not re.fullmatch(r"\.[A-Za-z0-9]{1,10}", ext):
        stem, ext = ascii_only(name).strip(" ._"), ""
    # A name made only of replaced characters says nothing; keep the extension, which matters.
    if not stem.strip("_ "):
        stem = "attachment"
    return stem + ext


def content_disposition(name: str, filename: str) -> str:
    """``form-data`` disposition with a safe ASCII ``filename`` and, when needed, ``filename*``.

    The original name survives in ``filename*=UTF-8''…`` (RFC 5987) for receivers that read it;
    every receiver finds a usable ``filename`` — RingCentral refuses a file part without one.
    """
    cleaned = _clean_filename(filename) or "attachment"
    fallback = _ascii_fallback(cleaned)
    value = f'form-data; name="{name}"; filename="{fallback}"'
    if fallback != cleaned:
        value += f"; filename*=UTF-8''{quote(cleaned, safe='')}"
    return value


# --- The builder ----------------------------------------------------------------------------


def _measure(source: AttachmentSource) -> int:
    """The size of the file in storage right now, without reading its content."""
    with source.open() as handle:
        size = getattr(handle, "size", None)
        if isinstance(size, int):
            return size
        handle.seek(0, io.SEEK_END)
        return handle.tell()


def _json_bytes(from_number: str, to_numbers: Sequence[str], text: str) -> bytes:
    body: dict[str, object] = {
        "from": {"phoneNumber": from_number},
        "to": [{"phoneNumber": number} for number in to_numbers],
    }
    if text:
        body["text"] = text
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build_message_request(
    from_number: str,
    to_numbers: Sequence[str],
    text: str,
    attachments: Sequence[AttachmentSource] = (),
) -> MessageRequest:
    """The request for one SMS/MMS, checked against ``messaging.limits``.

    Numbers are E.164 strings (``+15551234567``); several ``to_numbers`` make one group message.
    Every attachment is opened once to learn its current size; a size differing from the
    recorded one raises ``AttachmentChanged``. Raises ``limits.LimitsExceeded`` when the message
    breaks a limit (checked with the current sizes) and ``ValueError`` for a malformed number or
    content type, which only a programming error can produce.
    """
    to_numbers = list(to_numbers)
    for number in [from_number, *to_numbers]:
        if not isinstance(number, str) or not _E164.fullmatch(number):
            raise ValueError(f"not an E.164 phone number: {number!r}")
    text = text or ""

    files: list[_FileSegment] = []
    for source in attachments:
        actual = _measure(source)
        if source.size is not None and actual != source.size:
            raise AttachmentChanged(
                f"“{source.filename}” is {actual:,} bytes in storage but {source.size:,} bytes "
                "were uploaded. Attach the file again."
            )
        files.append(_FileSegment(source, actual, source.filename))

    checked = [
        {"name": f.filename, "size": f.size, "content_type": f.source.content_type} for f in files
    ]
    violations = limits.check_message(text, checked, len(to_numbers), group=True)
    if violations:
        raise limits.LimitsExceeded(violations)

    payload = _json_bytes(from_number, to_numbers, text)
    if not files:
        return MessageRequest(
            "application/json", len(payload), BodyStream([payload], len(payload), b"")
        )

    boundary = _boundary_not_in(payload)
    segments: list[bytes | _FileSegment] = [
        _part_head(boundary, JSON_PART_NAME, JSON_PART_FILENAME, "application/json"),
        payload,
    ]
    for file in files:
        content_type = file.source.content_type.strip()
        if not _HEADER_SAFE.fullmatch(content_type):
            raise ValueError(f"content type of {file.filename!r} is not a safe header value")
        segments.append(b"\r\n")
        segments.append(_part_head(boundary, ATTACHMENT_PART_NAME, file.filename, content_type))
        segments.append(file)
    segments.append(b"\r\n--" + boundary + b"--\r\n")

    length = sum(len(s) if isinstance(s, bytes) else s.size for s in segments)
    too_big = limits.check_request_size(length)
    if too_big:
        raise limits.LimitsExceeded(too_big)
    return MessageRequest(
        f"multipart/form-data; boundary={boundary.decode('ascii')}",
        length,
        BodyStream(segments, length, boundary),
    )


def _boundary_not_in(payload: bytes) -> bytes:
    while True:
        boundary = b"mmsportal-" + secrets.token_hex(16).encode("ascii")
        if boundary not in payload:
            return boundary


def _part_head(boundary: bytes, name: str, filename: str, content_type: str) -> bytes:
    return (
        b"--" + boundary + b"\r\n"
        b"Content-Disposition: " + content_disposition(name, filename).encode("ascii") + b"\r\n"
        b"Content-Type: " + content_type.encode("ascii") + b"\r\n\r\n"
    )
