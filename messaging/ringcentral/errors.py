"""RingCentral's error answers as typed exceptions.

Every failure that crosses the provider boundary is a `RingCentralError`. Callers decide with two
flags and show two strings:

- `retryable`: the same request may succeed later (rate limit, server error, network trouble).
- `permanent`: repeating the request will fail the same way until a person changes something.
- `reason`: what went wrong, in words for the user; `fix`: what they can do about it.

A few conditions get their own subclass because callers act on them differently (`AuthExpired`
triggers one refresh; `InvalidGrant` and `ConnectionBroken` mean "link RingCentral again";
`RateLimited` carries `retry_after`); those that may pass derive from `Retryable`.
`from_response` is the single place that reads RingCentral's error JSON. What each answer means
is written once, in `ERROR_TABLE`, keyed by `(status, code)` with a per-status fallback
(`ANY_CODE`), so that the documentation can be generated from the same table. Its reasons and
fixes are worded for sends, the answers users see; other endpoints get the same classes and
flags.

Two more conditions arise on our side of a send and are typed here too: `MessageInvalid` (the
message no longer passes the limits or its files changed; nothing was sent) and `OutcomeUnknown`
(the request may have reached RingCentral but no readable answer came back: never resend it
blindly, look for it in the message store first).

Messages never contain tokens or request bodies: only status, error code and RingCentral's own
message text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from . import limits

RECONNECT = "Reconnect RingCentral"
LINK_AGAIN = f"{RECONNECT}: link the account again from the RingCentral page."

# Without a Retry-After header RingCentral asks clients to wait at least this long after a 429.
DEFAULT_RETRY_AFTER = 30.0


class RingCentralError(Exception):
    """A failed exchange with RingCentral.

    Attributes: `status` (HTTP status, None when no answer arrived), `code` (RingCentral's
    `errorCode` or the OAuth `error`, may be empty), `message` (RingCentral's text, for logs),
    `retryable`, `permanent`, `reason` and `fix` (user-facing), `retry_after` (seconds or None).
    """

    retryable = False
    permanent = True
    default_reason = "RingCentral refused the request."
    default_fix = "Try again; if it keeps failing, ask a team admin to check the RingCentral link."

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        code: str = "",
        reason: str | None = None,
        fix: str | None = None,
        retryable: bool | None = None,
        permanent: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code or ""
        self.message = message
        self.reason = reason or self.default_reason
        self.fix = fix or self.default_fix
        if retryable is not None:
            self.retryable = retryable
        if permanent is not None:
            self.permanent = permanent
        self.retry_after = retry_after
        # RingCentral's X-Rate-Limit-* headers of the answer, when there was one.
        self.rate_limit: dict[str, str] = {}
        super().__init__(self._summary())

    def _summary(self) -> str:
        parts = [f"HTTP {self.status}" if self.status is not None else "no answer"]
        if self.code:
            parts.append(self.code)
        text = " ".join(parts)
        return f"{text}: {self.message}" if self.message else text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._summary()!r})"


class Retryable(RingCentralError):
    """A failure that may pass: the same request may succeed later, and the portal repeats it."""

    retryable = True
    permanent = False
    default_fix = "Nothing to do: the portal tries again shortly."


class AuthExpired(Retryable):
    """RingCentral rejected the access token (401). One refresh and one retry may fix it."""

    default_reason = "The RingCentral sign-in expired."
    default_fix = "Nothing to do: the portal renews it automatically."


class InvalidGrant(RingCentralError):
    """The token endpoint refused a code or refresh token (`invalid_grant`).

    For a refresh token this means the RingCentral session is gone (revoked, expired, password
    changed, too many sessions); only a new link helps.
    """

    default_reason = "RingCentral no longer accepts this link."
    default_fix = LINK_AGAIN


class ConnectionBroken(RingCentralError):
    """The connection cannot be used until someone links RingCentral again."""

    default_reason = "The RingCentral link is broken."
    default_fix = LINK_AGAIN


class OAuthFailed(RingCentralError):
    """Another OAuth error (`invalid_client`, `unauthorized_client`, `invalid_request`…).

    Usually a configuration problem of this portal, not of the user."""

    default_reason = "RingCentral refused this portal's sign-in request."
    default_fix = "Ask the person who runs the portal to check its RingCentral app settings."


class RateLimited(Retryable):
    """429: this RingCentral user sent too many requests of one kind; wait `retry_after` s."""

    default_reason = "RingCentral asked us to slow down."
    default_fix = "Nothing to do: the portal retries after the pause RingCentral asked for."


class PermissionMissing(RingCentralError):
    """403: the app or the RingCentral user lacks a permission or feature."""

    default_reason = "RingCentral does not allow this for the linked user."
    default_fix = "Ask your RingCentral administrator to enable the feature for this user."


class NotFound(RingCentralError):
    default_reason = "RingCentral could not find what was asked for."


class ServerError(Retryable):
    """5xx: RingCentral's side failed; the same request may work later."""

    default_reason = "RingCentral is having trouble right now."


class SendTooLate(Retryable):
    """The worker reached the POST after its claim on the message had (nearly) run out.

    Nothing was sent. A worker that stalled that long (a frozen VM, a stopped process) may
    already have been given up for dead, and the message handed to another worker; sending now
    could deliver it twice, so this attempt stops and the outbox decides what comes next.
    """

    default_reason = "The send started too late and was stopped before reaching RingCentral."


class NetworkError(Retryable):
    """No usable answer arrived (connection refused, timeout, reset).

    `request_sent` is False when the request certainly never reached RingCentral (connect
    failure) and None when it may have (read timeout, reset after sending); callers that must
    not repeat a side effect check it.
    """

    default_reason = "RingCentral could not be reached."

    def __init__(self, message: str = "", *, request_sent: bool | None = None, **kwargs) -> None:
        self.request_sent = request_sent
        super().__init__(message, **kwargs)


class UnexpectedResponse(Retryable):
    """A 2xx answer whose body is not what the API promises."""

    default_reason = "RingCentral sent an answer the portal could not read."
    # The same unreadable answer may well come back: say whom to ask if it keeps failing.
    default_fix = RingCentralError.default_fix


class FullSyncRequired(RingCentralError):
    """RingCentral will not continue an incremental message sync from the token given
    (`MSG-333`): the caller starts again with a full sync."""

    default_reason = "RingCentral asked for a full message sync."
    default_fix = "Nothing to do: the portal syncs again from the start."


class MessageRejected(RingCentralError):
    """4xx on a send: RingCentral refused this message as it is (number, text, files)."""

    default_reason = "RingCentral refused the message."
    default_fix = "Check the numbers, the text and the files, then send it again."


class MessageInvalid(RingCentralError):
    """Found before sending: the message breaks a limit or its stored files changed.

    Nothing went to RingCentral; sending it again as it is cannot work.
    """

    default_reason = "The message can no longer be sent as it is."
    default_fix = "Attach the files again and send a new message."


class OutcomeUnknown(RingCentralError):
    """The request may have reached RingCentral, but no readable answer came back (timeout or
    connection lost after the whole body was sent, or an unreadable 2xx).

    Neither retryable nor permanent: the message store must be checked before any new attempt.
    """

    retryable = False
    permanent = False
    default_reason = "The connection to RingCentral was lost while sending."
    default_fix = "Nothing to do: the portal checks with RingCentral before trying again."


def _body(response) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested past Python's stack
        return {}
    return data if isinstance(data, dict) else {}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
        return max(0.0, (moment - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def error_details(response) -> tuple[str, str, str]:
    """(`code`, `message`, OAuth `error`) from either of RingCentral's error shapes.

    REST answers carry `errors[0].errorCode` (and often a top-level `errorCode`); OAuth answers
    carry `error`/`error_description` beside the same list. The list entry is preferred: the
    top-level code is sometimes a generic one such as `InvalidParameter`.
    """
    data = _body(response)
    entries = data.get("errors")
    first = entries[0] if isinstance(entries, list) and entries else {}
    if not isinstance(first, dict):
        first = {}
    code = str(first.get("errorCode") or data.get("errorCode") or "")
    message = str(
        first.get("message") or data.get("error_description") or data.get("message") or ""
    )
    return code, message[:500], str(data.get("error") or "")


# --- What each answer means ------------------------------------------------------------------

ANY_CODE = ""

_FILES = limits.format_size(limits.MAX_ATTACHMENTS_BYTES)
_REPORT = "This is a fault of the portal, not of your message: tell the person who runs it."
_PICK_NUMBER = (
    "Pick one of your numbers, or re-sync numbers on the RingCentral page if they changed at "
    "RingCentral."
)
_ASK_ADMIN = "Ask your RingCentral administrator to enable it for this user and number."


@dataclass(frozen=True)
class Answer:
    """How the portal reads one kind of error answer.

    `kind` picks the exception class (see `KIND_CLASSES`): `rejected` (the message as it is),
    `permission` (a feature or permission is missing), `auth` (refresh once and retry),
    `rate_limited` (pause, then retry), `server` (retry on the backoff table), `not_found`.
    `meaning` says what RingCentral means, for the documentation; `reason` and `fix` are shown
    to the user as written.
    """

    kind: str
    meaning: str
    reason: str
    fix: str


KIND_CLASSES: dict[str, type[RingCentralError]] = {
    "rejected": MessageRejected,
    "permission": PermissionMissing,
    "auth": AuthExpired,
    "rate_limited": RateLimited,
    "server": ServerError,
    "not_found": NotFound,
}


def _answers(
    status: int, kind: str, rows: Iterable[tuple[str, ...]]
) -> dict[tuple[int, str], Answer]:
    """The table's entries for one status, whose answers are all of one kind.

    A row is `(code, meaning, reason, fix)`, or `(code, meaning)` where the user is told what
    the kind's exception class says by default.
    """
    error = KIND_CLASSES[kind]
    entries = {}
    for code, meaning, *words in rows:
        reason, fix = words or (error.default_reason, error.default_fix)
        entries[status, code] = Answer(kind, meaning, reason, fix)
    return entries


# 400: the request as sent is refused.
_BAD_REQUEST = (
    (
        "CMN-101",
        "A parameter value is invalid (often a number in the wrong format).",
        "RingCentral refused a value in the message, usually a phone number it cannot use.",
        "Check the sending number and every recipient, then send the message again.",
    ),
    (
        "CMN-103",
        "The JSON body cannot be parsed.",
        "RingCentral could not read the request.",
        _REPORT,
    ),
    (
        "CMN-104",
        "The request body cannot be parsed (multipart framing).",
        "RingCentral could not read the request.",
        _REPORT,
    ),
    (
        "CMN-406",
        "The same recipient appears twice in `to`.",
        "The same recipient appears twice in the message.",
        "Remove the repeated number and send the message again.",
    ),
    (
        "MSG-243",
        "The recipient's number is blocked.",
        "RingCentral blocks messages to this recipient's number.",
        "Remove the number, or ask your RingCentral administrator why it is blocked.",
    ),
    (
        "MSG-245",
        "`from` is not a number of the linked user.",
        "The sending number is not one of yours at RingCentral.",
        _PICK_NUMBER,
    ),
    (
        "MSG-246",
        "Sending from or to extension numbers is not available.",
        "Texts cannot be sent to or from an extension number.",
        "Use full phone numbers (with area code) for the sender and every recipient.",
    ),
    (
        "MSG-247",
        "Short-code recipients are not available.",
        "RingCentral does not send texts to short codes.",
        "Send to full phone numbers only.",
    ),
    (
        "MSG-337",
        "The attachments exceed the size limit.",
        f"The files are larger than RingCentral accepts in one message ({_FILES} in total).",
        "Remove or shrink files, then send the message again.",
    ),
    (
        "MSG-338",
        "The message exceeds the size limit.",
        f"The text is longer than RingCentral accepts ({limits.MAX_TEXT_UNITS:,} characters; "
        "emoji count as 2).",
        "Shorten the text or split it into two messages.",
    ),
    (
        "MSG-347",
        "An attachment is empty.",
        "One of the files is empty.",
        "Attach the file again, or remove it.",
    ),
    (
        "MSG-350",
        "An attachment part has no Content-Disposition.",
        "RingCentral could not read one of the files.",
        _REPORT,
    ),
    (
        "MSG-351",
        "An attachment part has no file name.",
        "RingCentral could not read one of the files.",
        _REPORT,
    ),
    (
        "MSG-365",
        "`country.id` and `country.isoCode` were both given.",
        "RingCentral refused the country of the message.",
        _REPORT,
    ),
    (
        "MSG-376",
        "The attachments exceed the size limit (older code).",
        f"The files are larger than RingCentral accepts in one message ({_FILES} in total).",
        "Remove or shrink files, then send the message again.",
    ),
    (
        "MSG-379",
        "Too many attachments.",
        f"The message has more files than RingCentral accepts ({limits.MAX_ATTACHMENTS}).",
        "Remove files, or send them in two messages.",
    ),
    (
        "MSG-381",
        "Too many recipients for a group message.",
        f"A group message reaches at most {limits.MAX_GROUP_RECIPIENTS} recipients.",
        "Remove recipients, or send to them separately.",
    ),
    (
        ANY_CODE,
        "Any other invalid request.",
        "RingCentral refused the request as sent.",
        "Check the numbers, the text and the files, then try again; if it keeps failing, tell "
        "the person who runs the portal.",
    ),
)
# 401: the access token was refused; the client refreshes once and repeats the request.
_UNAUTHORIZED = (
    ("OAU-128", "The access token expired."),
    ("OAU-129", "The access token is corrupted."),
    ("OAU-149", "The access token cannot be parsed."),
    ("OAU-213", "The access token is unknown (revoked or replaced)."),
    (ANY_CODE, "Authentication failed."),
)
# 403: a feature or permission is missing for this user, number or account.
_FORBIDDEN = (
    (
        "MSG-240",
        "International SMS is not available, or the recipient is not a US number.",
        "RingCentral does not send texts from this number to recipients outside the US.",
        "Remove the number, or ask your RingCentral administrator to enable international "
        "texting for the sending number.",
    ),
    (
        "MSG-241",
        "SMS cannot be sent from a fax number.",
        "The sending number is a fax number; RingCentral sends no texts from it.",
        _PICK_NUMBER,
    ),
    (
        "MSG-242",
        "The feature (SMS or MMS) is not available from this number.",
        "Texting (or sending files) is not available from this number at RingCentral — "
        "toll-free numbers, for instance, send no files.",
        "Pick a number that can send this message, or remove the files; "
        "or ask your RingCentral administrator to enable it and re-sync numbers.",
    ),
    (
        "MSG-304",
        "The number does not belong to the extension.",
        "The sending number is not one of yours at RingCentral.",
        _PICK_NUMBER,
    ),
    (
        "MSG-314",
        "The extension is of a type that cannot send SMS.",
        "The linked RingCentral user is of a kind that cannot send texts.",
        "Link a RingCentral user that has a phone line.",
    ),
    (
        "MSG-367",
        "The `from` number does not support SMS.",
        "The sending number cannot send texts at RingCentral (no SMS feature; it may be "
        "toll-free or not registered for texting).",
        "Pick another number, or ask your RingCentral administrator to enable texting on it "
        "and re-sync numbers.",
    ),
    (
        "MSG-383",
        "International MMS is not available.",
        "RingCentral does not send files to recipients outside the US and Canada.",
        "Remove the files, or the recipients abroad.",
    ),
    (
        "MSG-384",
        "The account's messaging limits are exceeded.",
        "Your RingCentral account has reached its texting limit for now (daily or monthly).",
        "Send it again once the limit resets, or ask your RingCentral administrator to raise it.",
    ),
    (
        "MSG-388",
        "The destination is prohibited.",
        "RingCentral does not allow texts to this destination.",
        "Remove the number.",
    ),
    (
        "BIL-103",
        "The MMS feature is not available for the account.",
        "Your RingCentral account cannot send files (MMS).",
        "Remove the files, or ask your RingCentral administrator to enable MMS.",
    ),
    (
        "CMN-401",
        "The app lacks the `SMS` permission.",
        "This portal's RingCentral app is not allowed to send texts (it lacks the SMS permission).",
        f"Ask your RingCentral administrator to grant the app the SMS permission, then "
        f"{RECONNECT.lower()}.",
    ),
    (
        "CMN-408",
        "The user lacks the `OutboundSMS` permission.",
        "The linked RingCentral user is not allowed to send texts.",
        "Ask your RingCentral administrator to give this user the permission to send SMS.",
    ),
    (ANY_CODE, "Any other missing feature or permission."),
)
_CONFLICT = (
    (
        ANY_CODE,
        "Conflict with the resource's state.",
        "RingCentral refused the request.",
        RingCentralError.default_fix,
    ),
)
_CONTENT_TOO_LARGE = (
    (
        ANY_CODE,
        "The request body is too large.",
        f"The message is larger than RingCentral accepts ({_FILES} of files in total).",
        "Remove or shrink files, then send the message again.",
    ),
)
_UNSUPPORTED_MEDIA_TYPE = (
    (
        "MSG-348",
        "An attachment's media type is not supported.",
        "RingCentral does not accept the type of one of the files.",
        f"Remove it or convert it to a supported type: {limits.supported_summary()}.",
    ),
    (
        ANY_CODE,
        "The request's content type is not supported.",
        "RingCentral could not read the request.",
        _REPORT,
    ),
)
# 429: over a rate limit; RingCentral says how long to wait (30 s when it does not).
_TOO_MANY_REQUESTS = (
    ("CMN-301", "Request rate exceeded (user level)."),
    ("CMN-302", "Request rate exceeded."),
    ("CMN-303", "Request rate exceeded."),
    ("CMN-304", "A duplicate request is already running."),
    ("CMN-310", "Global rate limit exceeded."),
    ("MSG-305", "Message rate exceeded."),
    (ANY_CODE, "Any other rate limit."),
)
# 5xx: RingCentral's side; the same request may work later.
_SERVICE_UNAVAILABLE = (
    (
        "MSG-290",
        "Sending failed; try later.",
        "RingCentral could not send the message just now.",
        ServerError.default_fix,
    ),
)
_SERVER_FAILED = ((ANY_CODE, "RingCentral's side failed."),)

# (HTTP status, RingCentral errorCode) -> Answer; (status, ANY_CODE) is the fallback for codes
# not listed. Codes from RingCentral's API reference and developer guide; a few numbers changed
# over the years, so both spellings are kept where the sources differ (MSG-337 / MSG-376).
ERROR_TABLE: dict[tuple[int, str], Answer] = {
    **_answers(400, "rejected", _BAD_REQUEST),
    **_answers(401, "auth", _UNAUTHORIZED),
    **_answers(403, "permission", _FORBIDDEN),
    **_answers(404, "not_found", [(ANY_CODE, "The resource does not exist.")]),
    **_answers(409, "rejected", _CONFLICT),
    **_answers(413, "rejected", _CONTENT_TOO_LARGE),
    **_answers(415, "rejected", _UNSUPPORTED_MEDIA_TYPE),
    **_answers(429, "rate_limited", _TOO_MANY_REQUESTS),
    **_answers(503, "server", _SERVICE_UNAVAILABLE),
    **_answers(500, "server", _SERVER_FAILED),
    **_answers(502, "server", _SERVER_FAILED),
    **_answers(503, "server", _SERVER_FAILED),
    **_answers(504, "server", _SERVER_FAILED),
}


def answer_for(status: int, code: str) -> Answer | None:
    """The table's entry for an answer: exact code first, then the status's fallback."""
    return ERROR_TABLE.get((status, code)) or ERROR_TABLE.get((status, ANY_CODE))


def rate_limit_headers(headers) -> dict[str, str]:
    """RingCentral's `X-Rate-Limit-*` headers of a response (names as RingCentral spells them)."""
    return {
        str(name): str(value)
        for name, value in (headers or {}).items()
        if str(name).lower().startswith("x-rate-limit-")
    }


def from_response(response, *, oauth: bool = False) -> RingCentralError:
    """The typed error for a non-2xx `requests.Response` from RingCentral.

    `oauth=True` for answers of `/restapi/oauth/*`, where the RFC 6749 `error` field decides.
    Everything else is read through `ERROR_TABLE`; a status the table does not know is a
    permanent `RingCentralError`, or a retryable `ServerError` from 500 up.
    """
    error = _classify(response, oauth=oauth)
    error.rate_limit = rate_limit_headers(response.headers)
    return error


def _classify(response, *, oauth: bool) -> RingCentralError:
    status = response.status_code
    code, message, oauth_error = error_details(response)
    common = {"status": status, "code": code or oauth_error}
    if (oauth or oauth_error) and status != 429 and status < 500:
        if oauth_error == "invalid_grant":
            return InvalidGrant(message, **common)
        return OAuthFailed(message, **common)
    answer = answer_for(status, code)
    if answer is None:
        answer = ERROR_TABLE[(503, ANY_CODE)] if status >= 500 else None
    if answer is None:
        return RingCentralError(message, **common)
    kind = KIND_CLASSES[answer.kind]
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if kind is RateLimited and retry_after is None:
        retry_after = DEFAULT_RETRY_AFTER
    return kind(message, reason=answer.reason, fix=answer.fix, retry_after=retry_after, **common)
