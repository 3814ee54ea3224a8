"""RingCentral's two error body shapes, raised from anywhere in a request and rendered once.

REST endpoints answer ``{"errorCode", "message", "errors": [{"errorCode", "message",
"parameterName"?}]}`` (the old top-level pair plus the list); OAuth endpoints answer
``{"error", "error_description", "errors": [...]}``.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer for a REST endpoint."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        parameter_name: str | None = None,
        parameter_value: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.parameter_name = parameter_name
        self.parameter_value = parameter_value
        self.headers = dict(headers or {})

    def entry(self) -> dict[str, Any]:
        item: dict[str, Any] = {"errorCode": self.code, "message": self.message}
        if self.parameter_name is not None:
            item["parameterName"] = self.parameter_name
        if self.parameter_value is not None:
            item["parameterValue"] = self.parameter_value
        return item

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"errorCode": self.code, "message": self.message}
        body["errors"] = [self.entry()]
        if self.parameter_name is not None:
            body["parameterName"] = self.parameter_name
        return body


class OAuthError(ApiError):
    """An error answer for ``/restapi/oauth/*``: RFC 6749 ``error`` plus RingCentral's list."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        code: str,
        *,
        headers: dict[str, str] | None = None,
        parameter_name: str | None = None,
    ) -> None:
        super().__init__(status, code, description, headers=headers, parameter_name=parameter_name)
        self.error = error

    def body(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "error_description": self.message,
            "errors": [self.entry()],
        }


def invalid_parameter(name: str, message: str | None = None, status: int = 400) -> ApiError:
    return ApiError(
        status,
        "CMN-101",
        message or f"Parameter [{name}] value is invalid",
        parameter_name=name,
    )


def not_found(name: str) -> ApiError:
    return ApiError(
        404,
        "CMN-102",
        f"Resource for parameter [{name}] is not found",
        parameter_name=name,
    )


def unsupported_media_type(content_type: str | None) -> ApiError:
    # RingCentral documents the 415 but no error code for it outside attachments;
    # CMN-104 ("Cannot parse request") is the closest documented one.
    return ApiError(
        415,
        "CMN-104",
        f"Unsupported Media Type: {content_type or '(none)'}",
        parameter_name="Content-Type",
    )
