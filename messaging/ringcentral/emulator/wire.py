"""The request and response objects passed between the HTTP server and the endpoint handlers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ApiError
from .multipart import header_value, parse_header_value

if TYPE_CHECKING:
    from .oauth import AuthContext


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    auth: AuthContext | None = None
    # Filled in while the request is handled, for the journal.
    message_id: int | None = None
    client_id: str | None = None
    extension_id: int | None = None

    def header(self, name: str) -> str | None:
        return header_value(self.headers, name)

    @property
    def content_type(self) -> str | None:
        return self.header("Content-Type")

    @property
    def media_type(self) -> str | None:
        """The Content-Type without parameters, lower-cased."""
        value = self.content_type
        if not value:
            return None
        try:
            return parse_header_value(value)[0]
        except ValueError:
            return value.split(";", 1)[0].strip().lower()

    def query_one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def json(self) -> Any:
        """The body parsed as JSON; CMN-103 when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, "CMN-103", "JSON can't be parsed") from exc


@dataclass
class Response:
    """An answer, or the promise of one.

    ``commit`` is set by endpoints whose side effect must wait until the server knows it will
    answer (sends under a ``stall`` fault); the server calls it to obtain the final response.
    """

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error_code: str | None = None
    message_id: int | None = None
    commit: Callable[[], Response] | None = None

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
        return cls(
            status,
            json.dumps(data, indent=None, separators=(",", ":")).encode("utf-8"),
            "application/json; charset=UTF-8",
            dict(headers or {}),
        )

    @classmethod
    def error(cls, error: ApiError) -> Response:
        response = cls.json(error.status, error.body(), error.headers)
        response.error_code = error.code
        return response

    @classmethod
    def html(cls, status: int, text: str, headers: dict[str, str] | None = None) -> Response:
        return cls(status, text.encode("utf-8"), "text/html; charset=utf-8", dict(headers or {}))

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(302, b"", None, {"Location": location, "Cache-Control": "no-store"})

    @property
    def outcome(self) -> str:
        if self.status == 429:
            return "rate_limited"
        return "accepted" if self.status < 400 else "rejected"
