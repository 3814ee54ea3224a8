"""A strict MIME multipart reader (RFC 2046 framing, RFC 7578 dispositions).

It only splits the body into parts and reads their headers; what the parts must contain is the
send endpoint's business (``messages.py``). Anything malformed raises ``MultipartError``:
a missing boundary, text after a delimiter, a part without a blank line after its headers,
folded or nameless header lines, a body without its closing delimiter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote


class MultipartError(ValueError):
    pass


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The value of the first header called ``name`` (names match in any case), else ``None``."""
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def parse_header_value(value: str) -> tuple[str, dict[str, str]]:
    """Split ``main; key=value; key="quoted"`` into the lower-cased main value and parameters.

    Parameter names are lower-cased; RFC 5987 ``name*=charset''text`` values are decoded and
    win over the plain ``name``.
    """
    pieces: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif quoted and char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == ";" and not quoted:
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise MultipartError(f"unterminated quoted string in header value {value!r}")
    pieces.append("".join(current))

    main = pieces[0].strip().lower()
    params: dict[str, str] = {}
    extended: dict[str, str] = {}
    for piece in pieces[1:]:
        piece = piece.strip()
        if not piece:
            continue
        if "=" not in piece:
            raise MultipartError(f"malformed parameter {piece!r}")
        name, raw = piece.split("=", 1)
        name = name.strip().lower()
        raw = raw.strip()
        if not name:
            raise MultipartError(f"malformed parameter {piece!r}")
        if name.endswith("*"):
            charset, _, rest = raw.partition("'")
            _, _, text = rest.partition("'")
            try:
                extended[name[:-1]] = unquote(text, encoding=charset or "utf-8", errors="strict")
            except (LookupError, UnicodeDecodeError) as exc:
                raise MultipartError(f"undecodable parameter {piece!r}") from exc
            continue
        if raw.startswith('"'):
            if len(raw) < 2 or not raw.endswith('"'):
                raise MultipartError(f"malformed quoted parameter {piece!r}")
            inner = raw[1:-1]
            out: list[str] = []
            skip = False
            for char in inner:
                if skip:
                    out.append(char)
                    skip = False
                elif char == "\\":
                    skip = True
                else:
                    out.append(char)
            raw = "".join(out)
        params[name] = raw
    params.update(extended)
    return main, params


@dataclass(frozen=True)
class Part:
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    @property
    def content_type(self) -> str | None:
        """The media type without parameters, lower-cased; ``None`` when the header is absent."""
        value = self.header("Content-Type")
        if value is None:
            return None
        return parse_header_value(value)[0]

    @property
    def disposition(self) -> tuple[str, dict[str, str]] | None:
        value = self.header("Content-Disposition")
        if value is None:
            return None
        return parse_header_value(value)

    @property
    def filename(self) -> str | None:
        disposition = self.disposition
        if disposition is None:
            return None
        return disposition[1].get("filename")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def boundary_of(content_type: str) -> str:
    _, params = parse_header_value(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise MultipartError("the Content-Type has no boundary parameter")
    if len(boundary) > 70 or boundary.endswith(" "):
        raise MultipartError("the boundary is not valid (RFC 2046: 1-70 characters)")
    return boundary


def _decode_header_line(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _parse_part(raw: bytes) -> Part:
    if raw.startswith(b"\r\n"):
        head, body = b"", raw[2:]
    else:
        end = raw.find(b"\r\n\r\n")
        if end < 0:
            raise MultipartError("a part's headers are not followed by an empty line")
        head, body = raw[:end], raw[end + 4 :]
    headers: list[tuple[str, str]] = []
    if head:
        for line in head.split(b"\r\n"):
            if line[:1] in (b" ", b"\t"):
                raise MultipartError("folded header lines are not accepted")
            name, sep, value = line.partition(b":")
            name_text = _decode_header_line(name)
            if not sep or not name_text or name_text.strip() != name_text:
                raise MultipartError(f"malformed part header line {line[:80]!r}")
            headers.append((name_text, _decode_header_line(value).strip()))
    encoding = header_value(headers, "Content-Transfer-Encoding")
    if encoding is not None and encoding.strip().lower() not in ("binary", "8bit", "7bit"):
        raise MultipartError(f"Content-Transfer-Encoding {encoding!r} is not accepted")
    return Part(tuple(headers), body)


def parse(body: bytes, content_type: str) -> list[Part]:
    """The parts of ``body`` in order. Raises ``MultipartError`` on any framing defect."""
    media_type, _ = parse_header_value(content_type)
    if not media_type.startswith("multipart/"):
        raise MultipartError(f"{media_type!r} is not a multipart type")
    dash = b"--" + boundary_of(content_type).encode("latin-1")

    if body.startswith(dash):
        pos = 0
    else:
        first = body.find(b"\r\n" + dash)
        if first < 0:
            raise MultipartError("the body does not contain the boundary")
        pos = first + 2

    parts: list[Part] = []
    while True:
        pos += len(dash)
        if body[pos : pos + 2] == b"--":
            break
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise MultipartError("a boundary line is not terminated")
        if body[pos:eol].strip(b" \t"):
            raise MultipartError("unexpected text after a boundary")
        start = eol + 2
        following = body.find(b"\r\n" + dash, start)
        if following < 0:
            raise MultipartError("the body ends without the closing boundary")
        parts.append(_parse_part(body[start:following]))
        pos = following + 2
    if not parts:
        raise MultipartError("the body contains no parts")
    return parts
