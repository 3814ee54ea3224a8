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
    The body is never held in memory as a whole. ``MessageRequest.body`` produces it in pieces of
    at most ``CHUNK_SIZE`` bytes, pulling file parts from storage while the request is being
    sent, so memory use does not grow with attachment size. ``body.chunks()`` gives the pieces as
    views of one reused buffer (the sender writes each to the socket before asking for the next:
    no copy of the file bytes is made on the way); ``body.read(n)`` is the same stream as a file
    object, for tests and for anything that wants ``bytes``. ``seek(0)`` starts it again.

    The encoder is written here on the standard library rather than requests-toolbelt's
    ``MultipartEncoder``: that encoder formats the ``filename`` parameter its own way (no ASCII
    fallback beside ``filename*``), reads files in small pieces through its own buffer (an
    extra copy of every byte) and cannot notice a file changing size under it.

Integrity
    Limits are checked again here with the sizes storage reports now; a file whose size differs
    from the one recorded at upload is refused (``AttachmentChanged``). If a file's bytes then
    differ from that size while streaming, the stream raises ``AttachmentChanged`` — the send
    fails loudly instead of sending a body whose length does not match its ``Content-Length``.

    The boundary is 128 random bits, drawn for each attempt after the files were stored and
    shown to no one before the body goes out, so no file can have been made to contain it; the
    JSON part, which we write, is checked, and file data is not searched (the odds of a chance
    match are 2**-128 per attempt, and the search would cost a third of the CPU a send needs).
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

from . import limits

# One buffer of this size per body being sent: the only memory streaming takes, whatever the
# size of the files. Large enough that a maximum MMS goes out in a dozen writes.
CHUNK_SIZE = 128 * 1024
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

    ``body`` is produced once per attempt (``body.chunks()`` or ``body.read(n)``); ``body.seek(0)``
    rewinds it, though a retry had better build the request again so that limits and sizes are
    checked anew.
    """

    content_type: str
    content_length: int
    body: BodyStream

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, "Content-Length": str(self.content_length)}


@dataclass(frozen=True)
class _FileSegment:
    handle: IO[bytes]
    size: int
    filename: str


class BodyStream(io.RawIOBase):
    """A read-only, forward-only stream over bytes segments and open files.

    ``chunks()`` yields the rest of the body as memoryviews of one reused buffer, each valid
    until the next is asked for; ``read(n)`` returns at most ``n`` bytes and ``b""`` at the end.
    Both move the same position (``tell()``). Only ``seek(0)`` (start over) and seeks to the
    current position are supported; that is all a retry needs. ``close()`` closes the files.
    """

    def __init__(self, segments: Sequence[bytes | _FileSegment], length: int):
        super().__init__()
        self._segments = list(segments)
        self._length = length
        self._reset()

    def _reset(self) -> None:
        self._position = 0
        self._pieces: Iterator[memoryview] | None = None
        self._unread = memoryview(b"")  # the rest of the piece read() is handing out

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
            self._stop()
            for segment in self._segments:
                if isinstance(segment, _FileSegment):
                    segment.handle.seek(0)
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
            return b"".join(bytes(piece) for piece in self.chunks())
        out = bytearray()
        while len(out) < size:
            if not self._unread:
                self._unread = next(self._started(), memoryview(b""))
                if not self._unread:
                    break
            take = self._unread[: size - len(out)]
            out += take
            self._unread = self._unread[len(take) :]
        self._position += len(out)
        return bytes(out)

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(CHUNK_SIZE), b"")

    def chunks(self) -> Iterator[memoryview]:
        """The rest of the body, CHUNK_SIZE bytes at a time (the last piece shorter)."""
        if self.closed:
            raise ValueError("read from a closed message body")
        if self._unread:
            piece, self._unread = self._unread, memoryview(b"")
            self._position += len(piece)
            yield piece
        for piece in self._started():
            self._position += len(piece)
            yield piece

    def close(self) -> None:
        self._stop()
        for segment in self._segments:
            if isinstance(segment, _FileSegment):
                segment.handle.close()
        super().close()

    # -- producing the bytes --------------------------------------------------------------------

    def _started(self) -> Iterator[memoryview]:
        if self._pieces is None:
            self._pieces = self._produce()
        return self._pieces

    def _produce(self) -> Iterator[memoryview]:
        """Fill one buffer with the segments in order and hand it out each time it is full."""
        buffer = memoryview(bytearray(CHUNK_SIZE))
        filled = 0
        for segment in self._segments:
            if isinstance(segment, bytes):
                data = memoryview(segment)
                while data:
                    take = min(len(data), CHUNK_SIZE - filled)
                    buffer[filled : filled + take] = data[:take]
                    filled += take
                    data = data[take:]
                    if filled == CHUNK_SIZE:
                        yield buffer
                        filled = 0
                continue
            read_into = _reader_into(segment.handle)
            remaining = segment.size
            while remaining:
                if filled == CHUNK_SIZE:
                    yield buffer
                    filled = 0
                got = read_into(buffer[filled : filled + min(remaining, CHUNK_SIZE - filled)])
                if not got:
                    break
                filled += got
                remaining -= got
            self._finish_file(segment, segment.size - remaining)
        if filled:
            yield buffer[:filled]

    def _finish_file(self, segment: _FileSegment, read: int) -> None:
        """At the recorded size: the file must end exactly here."""
        short = read < segment.size
        longer = not short and segment.handle.read(1) != b""
        if short or longer:
            found = f"only {read:,}" if short else "more than"
            raise AttachmentChanged(
                f"“{segment.filename}” changed while it was being sent: expected "
                f"{segment.size:,} bytes, storage gave {found} bytes. Attach the file again."
            )

    def _stop(self) -> None:
        if self._pieces is not None:
            self._pieces.close()
            self._pieces = None
        self._unread = memoryview(b"")


def _reader_into(handle: IO[bytes]):
    """``readinto`` of a file object, or the same made of ``read`` for objects without it."""
    read_into = getattr(handle, "readinto", None)
    if read_into is not None:
        return read_into

    def copy_read(view: memoryview) -> int:
        data = handle.read(len(view))
        view[: len(data)] = data
        return len(data)

    return copy_read


# --- Filenames ------------------------------------------------------------------------------

_FILENAME_MAX = 120
# Names such as "IMG_0042.jpg" or "Floor plan v2.pdf": words of ASCII letters and digits joined
# by single separators, and an extension. Cleaning them and spelling them in ASCII changes
# nothing, so they skip both (tests/test_multipart.py checks that the two ways agree).
_PLAIN_FILENAME = re.compile(r"[A-Za-z0-9]+(?:[-_ .][A-Za-z0-9]+)*\.[A-Za-z0-9]{1,10}")


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
    if len(filename) <= _FILENAME_MAX and _PLAIN_FILENAME.fullmatch(filename):
        return f'form-data; name="{name}"; filename="{filename}"'
    return _cleaned_disposition(name, filename)


def _cleaned_disposition(name: str, filename: str) -> str:
    cleaned = _clean_filename(filename) or "attachment"
    fallback = _ascii_fallback(cleaned)
    value = f'form-data; name="{name}"; filename="{fallback}"'
    if fallback != cleaned:
        value += f"; filename*=UTF-8''{quote(cleaned, safe='')}"
    return value


# --- The builder ----------------------------------------------------------------------------


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
    Every attachment is opened here and its current size taken from storage (not by reading
    it); a size differing from the recorded one raises ``AttachmentChanged``. The request then
    holds the open files until its body is closed. Raises ``limits.LimitsExceeded`` when the
    message breaks a limit (checked with the current sizes) and ``ValueError`` for a malformed
    number or content type, which only a programming error can produce.
    """
    to_numbers, attachments = list(to_numbers), list(attachments)
    for number in [from_number, *to_numbers]:
        if not isinstance(number, str) or not _E164.fullmatch(number):
            raise ValueError(f"not an E.164 phone number: {number!r}")
    text = text or ""

    files: list[_FileSegment] = []
    try:
        for source in attachments:
            # Opened once: the size checked now and the bytes sent later come from the same
            # open file, even if storage replaces it meanwhile.
            handle = source.open()
            files.append(_FileSegment(handle, _size_of(handle), source.filename))
            if source.size is not None and files[-1].size != source.size:
                raise AttachmentChanged(
                    f"“{source.filename}” is {files[-1].size:,} bytes in storage but "
                    f"{source.size:,} bytes were uploaded. Attach the file again."
                )
        return _assemble(from_number, to_numbers, text, attachments, files)
    except BaseException:
        for file in files:
            file.handle.close()
        raise


def _size_of(handle: IO[bytes]) -> int:
    """The size of an open file in storage, without reading its content."""
    local = getattr(handle, "file", handle)  # what a Django File wraps
    if isinstance(local, io.BufferedReader | io.FileIO):
        # The size of the very file held open, even if storage has put another under its name
        # since (Django's File.size looks the name up again). Only for files on disk: asking a
        # remote backend's spooled download for its descriptor would copy it to disk.
        return os.fstat(local.fileno()).st_size
    size = getattr(handle, "size", None)
    if isinstance(size, int):
        return size
    handle.seek(0, io.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    return size


def _assemble(
    from_number: str,
    to_numbers: list[str],
    text: str,
    attachments: list[AttachmentSource],
    files: list[_FileSegment],
) -> MessageRequest:
    checked = [
        {"name": f.filename, "size": f.size, "content_type": source.content_type}
        for f, source in zip(files, attachments, strict=True)
    ]
    violations = limits.check_message(text, checked, len(to_numbers), group=True)
    if violations:
        raise limits.LimitsExceeded(violations)

    payload = _json_bytes(from_number, to_numbers, text)
    if not files:
        return MessageRequest("application/json", len(payload), BodyStream([payload], len(payload)))

    boundary = _boundary_not_in(payload)
    segments: list[bytes | _FileSegment] = [
        _part_head(boundary, JSON_PART_NAME, JSON_PART_FILENAME, "application/json"),
        payload,
    ]
    for file, source in zip(files, attachments, strict=True):
        content_type = source.content_type.strip()
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
        BodyStream(segments, length),
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
