"""A narrow RingCentral REST client for one linked user.

    client = RingCentralClient(connection)
    client.get_extension() -> ExtensionInfo
    client.get_account() -> AccountInfo
    client.list_numbers() -> list[PhoneNumberInfo]   (all pages)
    client.send(message) -> SentMessage              (one POST …/sms; see "Sending" below)
    client.find_sent(message) -> SentMessage | None  (the message store, for unknown outcomes)

Every call goes through `_request`, which takes a token from `oauth.fresh_access_token` (so it
is refreshed proactively under the row lock), and on a 401 forces one refresh — under the same
lock, so concurrent 401s still cause a single refresh — and retries once. Non-2xx answers
become `errors.RingCentralError` subclasses. New endpoints (sending, message store,
subscriptions) are added as methods that build their request and call `_request`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from messaging import limits

from . import errors, http, multipart, oauth

log = logging.getLogger(__name__)

API = "/restapi/v1.0"
EXTENSION_PATH = f"{API}/account/~/extension/~"
ACCOUNT_PATH = f"{API}/account/~"
PHONE_NUMBERS_PATH = f"{API}/account/~/extension/~/phone-number"

# Paging guard: an extension has a handful of numbers; a server that never stops paging is a bug.
MAX_PAGES = 50
PER_PAGE = 100

# Called with None for a token, or with the token RingCentral just refused (for a fresh one).
TokenSource = Callable[[str | None], str]


@dataclass(frozen=True)
class ExtensionInfo:
    id: str
    account_id: str
    name: str
    extension_number: str
    email: str = ""
    company: str = ""


@dataclass(frozen=True)
class AccountInfo:
    id: str
    main_number: str = ""


@dataclass(frozen=True)
class PhoneNumberInfo:
    """One record of the extension's phone-number list."""

    id: str
    phone_number: str
    features: tuple[str, ...] = ()
    usage_type: str = ""
    payment_type: str = ""
    type: str = ""
    label: str = ""
    status: str = ""

    @property
    def is_toll_free(self) -> bool:
        return self.payment_type in ("TollFree", "ExternalNumberProviderTollFree")

    @property
    def is_fax(self) -> bool:
        return self.type == "FaxOnly" or self.usage_type == "CompanyFaxNumber"

    @property
    def can_sms(self) -> bool:
        return "SmsSender" in self.features and not self.is_fax

    @property
    def can_mms(self) -> bool:
        # RingCentral sends no MMS from toll-free numbers even if a feature list said so.
        return "MmsSender" in self.features and not self.is_toll_free and not self.is_fax


@dataclass
class RingCentralClient:
    """REST calls on behalf of one RingCentral user.

    Build it from a saved connection (`RingCentralClient(connection)`); while linking, before
    a connection exists, use `RingCentralClient.for_access_token(token)`, which cannot refresh.
    """

    connection: Any = None
    token_source: TokenSource | None = None
    session: requests.Session = field(default_factory=http.new_session, repr=False)

    def __post_init__(self) -> None:
        if self.token_source is None:
            if self.connection is None:
                raise ValueError("RingCentralClient needs a connection or a token source")
            connection_id = self.connection.pk

            def token_source(stale: str | None) -> str:
                return oauth.fresh_access_token(connection_id, stale_token=stale)

            self.token_source = token_source

    @classmethod
    def for_access_token(cls, access_token: str) -> RingCentralClient:
        def token_source(stale: str | None) -> str:
            if stale is not None:
                raise errors.AuthExpired("access token refused and no refresh possible")
            return access_token

        return cls(token_source=token_source)

    # --- endpoints ------------------------------------------------------------------------

    def get_extension(self) -> ExtensionInfo:
        data = self._json("GET", EXTENSION_PATH)
        contact = data.get("contact") or {}
        account = data.get("account") or {}
        if "id" not in data or "id" not in account:
            raise errors.UnexpectedResponse("extension without id or account id")
        name = data.get("name") or " ".join(
            part for part in (contact.get("firstName"), contact.get("lastName")) if part
        )
        return ExtensionInfo(
            id=str(data["id"]),
            account_id=str(account["id"]),
            name=str(name or ""),
            extension_number=str(data.get("extensionNumber") or ""),
            email=str(contact.get("email") or ""),
            company=str(contact.get("company") or ""),
        )

    def get_account(self) -> AccountInfo:
        data = self._json("GET", ACCOUNT_PATH)
        if "id" not in data:
            raise errors.UnexpectedResponse("account without id")
        return AccountInfo(id=str(data["id"]), main_number=str(data.get("mainNumber") or ""))

    def list_numbers(self) -> list[PhoneNumberInfo]:
        """All phone numbers of the extension, following RingCentral's paging."""
        numbers: list[PhoneNumberInfo] = []
        for page in range(1, MAX_PAGES + 1):
            data = self._json("GET", PHONE_NUMBERS_PATH, params={"page": page, "perPage": PER_PAGE})
            for record in data.get("records") or []:
                if record.get("phoneNumber"):
                    numbers.append(_phone_number(record))
            paging = data.get("paging") or {}
            total_pages = paging.get("totalPages")
            has_next = bool((data.get("navigation") or {}).get("nextPage"))
            if total_pages is not None:
                has_next = page < int(total_pages)
            if not has_next:
                return numbers
        raise errors.UnexpectedResponse(f"phone-number list did not end after {MAX_PAGES} pages")

    # --- sending (see the "Sending" section below) -------------------------------------------

    def send(self, message, *, not_after: float | None = None) -> SentMessage:
        """POST one OutboundMessage to `…/sms` and return what RingCentral accepted.

        At most one request, plus one more after a 401 (refresh, then the body is built again).
        Raises, and the outcome each error means for the message:
          `MessageInvalid`     found before sending (limits, changed or missing files): permanent;
          `NetworkError`       (`request_sent=False`) the request never reached RingCentral
                               whole: safe to send again;
          `OutcomeUnknown`     the whole request went out but no readable answer came back:
                               RingCentral may have the message; look for it before resending;
          `RateLimited`, `ServerError`, `MessageRejected`, `PermissionMissing`, … from the answer
                               (`errors.ERROR_TABLE`); `ConnectionBroken` when the link is gone;
          `SendTooLate`        `not_after` (a `time.monotonic()` deadline) had passed when the
                               request was about to go: nothing was sent.
        """
        # The worker read the connection with the message a moment ago: its token, unless due
        # for a refresh, saves reading the row again.
        loaded = oauth.loaded_access_token(self.connection) if self.connection else None
        token = loaded or self.token_source(None)
        response = self._post_message(message, token, not_after)
        if response.status_code == 401:
            # RingCentral checks the token before it reads the message: nothing was sent.
            log.info("RingCentral answered 401 to a send; refreshing once")
            token = self.token_source(token)
            response = self._post_message(message, token, not_after)
        if response.status_code >= 400:
            raise errors.from_response(response)
        return _accepted(response)

    def find_sent(self, message, *, exclude_ids=frozenset()) -> SentMessage | None:
        """The record an earlier attempt of `message` created in RingCentral's store, or None.

        Lists outbound SMS/MMS from the attempt's start (`sending_since`) minus
        `reconcile_margin()`, every page, and picks with `match_sent`. Light group: one request
        per page. Ids in `exclude_ids` belong to other messages already and are skipped.
        """
        records = list(self.sent_since(search_start(message)))
        return match_sent(message, records, exclude_ids=exclude_ids)

    def sent_since(self, since: datetime) -> Iterator[SentMessage]:
        """Outbound SMS/MMS records created at or after `since`, newest first, every page."""
        params = {
            "direction": "Outbound",
            "messageType": "SMS",
            "dateFrom": _iso(since),
            "perPage": STORE_PER_PAGE,
        }
        for page in range(1, MAX_STORE_PAGES + 1):
            data = self._json("GET", MESSAGE_STORE_PATH, params={**params, "page": page})
            for record in data.get("records") or []:
                if isinstance(record, dict) and record.get("id") is not None:
                    yield _sent_record(record)
            paging = data.get("paging") or {}
            has_next = bool((data.get("navigation") or {}).get("nextPage"))
            if paging.get("totalPages") is not None:
                has_next = page < int(paging["totalPages"])
            if not has_next:
                return
        raise errors.UnexpectedResponse(f"message store did not end after {MAX_STORE_PAGES} pages")

    @sensitive_variables("token", "headers")
    def _post_message(self, message, token: str, not_after: float | None) -> http.Answer:
        """One POST of a freshly built body; transport failures sorted by whether it all went."""
        request = build_send_request(message)
        headers = {**request.headers, "Authorization": f"Bearer {token}"}
        try:
            # Checked last, just before the first byte goes out, so the window in which a stall
            # can still lead to a late request is as short as it can be.
            if not_after is not None and time.monotonic() > not_after:
                raise errors.SendTooLate("the claim on the message ran out before the POST")
            return http.post_message(
                SEND_PATH,
                headers,
                request.body.chunks(),
                timeout=tuple(settings.RINGCENTRAL_TIMEOUT),
            )
        except errors.NetworkError as exc:
            # RingCentral cannot accept half a request: only a body that went out whole may
            # have become a message.
            if exc.request_sent is False:
                raise
            if request.body.tell() < request.content_length:
                raise errors.NetworkError(exc.message, request_sent=False) from exc
            raise errors.OutcomeUnknown(exc.message) from exc
        except multipart.AttachmentChanged as exc:
            # Raised mid-body: the request was cut off before its end, so nothing was accepted.
            raise errors.MessageInvalid(str(exc), reason=str(exc), fix=ATTACH_AGAIN) from exc
        finally:
            request.body.close()

    # --- plumbing -------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            data = response.json()
        except ValueError:
            raise errors.UnexpectedResponse(f"{method} {path}: answer is not JSON") from None
        if not isinstance(data, dict):
            raise errors.UnexpectedResponse(f"{method} {path}: answer is not an object")
        return data

    @sensitive_variables("token")
    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Send with a fresh token; on 401 refresh once (forced, under the lock) and retry once."""
        token = self.token_source(None)
        response = self._send(method, path, token, **kwargs)
        if response.status_code == 401:
            log.info("RingCentral answered 401 to %s %s; refreshing once", method, path)
            token = self.token_source(token)
            response = self._send(method, path, token, **kwargs)
        if response.status_code >= 400:
            raise errors.from_response(response)
        return response

    @sensitive_variables("token", "headers")
    def _send(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {token}"}
        return self.session.request(method, http.url(path), headers=headers, **kwargs)


def _phone_number(record: dict[str, Any]) -> PhoneNumberInfo:
    return PhoneNumberInfo(
        id=str(record.get("id") or ""),
        phone_number=str(record["phoneNumber"]),
        features=tuple(str(f) for f in record.get("features") or ()),
        usage_type=str(record.get("usageType") or ""),
        payment_type=str(record.get("paymentType") or ""),
        type=str(record.get("type") or ""),
        label=str(record.get("label") or ""),
        status=str(record.get("status") or ""),
    )


# Sending ------------------------------------------------------------------------------------
#
# A send is one POST of `multipart.build_message_request`'s body (JSON for a plain SMS,
# multipart/form-data with files), streamed from storage. What the caller may do next depends on
# how far the request got, which is why transport failures are split (see `send`): a request
# whose body was not read to its end cannot have been accepted; one that went out whole may
# have been, and only the message store can tell (`find_sent`).

SEND_PATH = f"{EXTENSION_PATH}/sms"
MESSAGE_STORE_PATH = f"{EXTENSION_PATH}/message-store"
STORE_PER_PAGE = 250
MAX_STORE_PAGES = 40
ATTACH_AGAIN = "Attach the files again and send a new message."

_local = threading.local()


def pooled_session() -> requests.Session:
    """This thread's chokepoint session, kept for keep-alive between sends and reads (one per
    process after a fork: sockets are never shared with a parent or a sibling)."""
    key = (os.getpid(), http.server_url())
    session = getattr(_local, "session", None)
    if session is None or getattr(_local, "key", None) != key:
        session = http.new_session()
        _local.session, _local.key = session, key
    return session


def reconcile_margin() -> timedelta:
    """How far before an attempt the message store is searched: RingCentral's clock and ours
    differ, and it stamps the message when it stores it."""
    return timedelta(seconds=getattr(settings, "OUTBOX_RECONCILE_MARGIN", 300))


@dataclass(frozen=True)
class SentMessage:
    """RingCentral's record of an accepted message (the send answer or a message-store record).

    `id` and `conversation_id` are strings: both exceed 2**53, which JSON tools that read
    numbers as doubles would corrupt. `recipient_statuses` maps E.164 numbers to RingCentral's
    `messageStatus`; `rate_limit` holds the answer's `X-Rate-Limit-*` headers.
    """

    id: str
    conversation_id: str = ""
    from_number: str = ""
    recipient_statuses: dict[str, str] = field(default_factory=dict)
    text: str = ""
    attachment_count: int = 0
    created_at: datetime | None = None
    http_status: int = 200
    rate_limit: dict[str, str] = field(default_factory=dict)


def build_send_request(message) -> multipart.MessageRequest:
    """The wire request for an OutboundMessage, with its files streamed from storage.

    Recipients and attachments come in their models' order, from the rows prefetched with the
    message when there are (`outbox.claim` does), else from the database. Limits are checked
    again against the files as they are in storage now; any mismatch is a `MessageInvalid` with
    a reason for the user (nothing is sent).
    """
    recipients = [recipient.phone_number for recipient in message.recipients.all()]
    storage = message.attachments.model._meta.get_field("file").storage
    files = [
        multipart.StoredAttachment(storage, a.file.name, a.original_name, a.content_type, a.size)
        for a in message.attachments.all()
    ]
    try:
        return multipart.build_message_request(message.from_number, recipients, message.text, files)
    except limits.LimitsExceeded as exc:
        raise errors.MessageInvalid(
            str(exc), reason=str(exc), fix="Change the message to fit, then send it again."
        ) from exc
    except multipart.AttachmentChanged as exc:
        raise errors.MessageInvalid(str(exc), reason=str(exc), fix=ATTACH_AGAIN) from exc
    except FileNotFoundError as exc:
        raise errors.MessageInvalid(
            "attachment missing from storage",
            reason="A file of this message is no longer in storage.",
            fix=ATTACH_AGAIN,
        ) from exc
    except ValueError as exc:
        raise errors.MessageInvalid(
            str(exc),
            reason="A phone number or file type of this message cannot be sent.",
            fix="Send a new message from the compose page.",
        ) from exc


def _accepted(response: http.Answer) -> SentMessage:
    """A 2xx answer to a send. RingCentral has the message, so an answer we cannot read is an
    unknown outcome (never a retry): the message store will have its id."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("id") in (None, ""):
        raise errors.OutcomeUnknown(f"HTTP {response.status_code} without a message id")
    return replace(
        _sent_record(data),
        http_status=response.status_code,
        rate_limit=errors.rate_limit_headers(response.headers),
    )


def _sent_record(data: dict[str, Any]) -> SentMessage:
    conversation = data.get("conversation") or {}
    conversation_id = conversation.get("id") if isinstance(conversation, dict) else None
    if conversation_id in (None, ""):
        conversation_id = data.get("conversationId")
    top_status = str(data.get("messageStatus") or "")
    statuses = {}
    for recipient in data.get("to") or []:
        if isinstance(recipient, dict) and recipient.get("phoneNumber"):
            statuses[str(recipient["phoneNumber"])] = str(
                recipient.get("messageStatus") or top_status
            )
    files = [
        a
        for a in data.get("attachments") or []
        if isinstance(a, dict) and a.get("type") == "MmsAttachment"
    ]
    return SentMessage(
        id=str(data["id"]),
        conversation_id="" if conversation_id is None else str(conversation_id),
        from_number=str((data.get("from") or {}).get("phoneNumber") or ""),
        recipient_statuses=statuses,
        text=str(data.get("subject") or ""),
        attachment_count=len(files),
        created_at=_parse_time(data.get("creationTime")),
    )


def search_start(message) -> datetime:
    """Where the message store is searched from for `message`."""
    return (message.sending_since or message.created_at) - reconcile_margin()


def match_sent(message, records, *, exclude_ids=frozenset()) -> SentMessage | None:
    """The record among `records` that is `message`: same sender, the same recipients as a set,
    the same text and as many files (MmsAttachment entries), created no earlier than
    `search_start(message)`; ids in `exclude_ids` are skipped. Of several, the earliest: later
    ones are the user's own repeats of the same text.
    """
    wanted = _Fingerprint.of_message(message)
    since = search_start(message)
    matches = [
        record
        for record in records
        if record.id not in exclude_ids
        and (record.created_at is None or record.created_at >= since)
        and wanted.matches(record)
    ]
    if not matches:
        return None
    return min(matches, key=lambda r: (r.created_at is None, r.created_at or since, r.id))


@dataclass(frozen=True)
class _Fingerprint:
    """What identifies a message in the store when its id is not known."""

    from_number: str
    recipients: frozenset[str]
    text: str
    attachment_count: int

    @classmethod
    def of_message(cls, message) -> _Fingerprint:
        return cls(
            from_number=message.from_number,
            recipients=frozenset(message.recipients.values_list("phone_number", flat=True)),
            text=_normal_text(message.text),
            attachment_count=message.attachments.count(),
        )

    def matches(self, record: SentMessage) -> bool:
        return (
            record.from_number == self.from_number
            and frozenset(record.recipient_statuses) == self.recipients
            and _normal_text(record.text) == self.text
            and record.attachment_count == self.attachment_count
        )


def _normal_text(text: str) -> str:
    # Line endings and surrounding blanks are the only differences a store could introduce.
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def _iso(moment: datetime) -> str:
    """RingCentral's date-time format: UTC with milliseconds and a Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
