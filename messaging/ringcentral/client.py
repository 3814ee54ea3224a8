"""A narrow RingCentral REST client for one RingCentral user.

    client = RingCentralClient(token_source)
    client.get_extension() -> ExtensionInfo
    client.get_account() -> AccountInfo
    client.list_numbers() -> list[PhoneNumberInfo]          (all pages)
    client.send(from_number, to_numbers, text, files) -> Sent   (one POST …/sms; see "Sending")
    client.sent_since(moment) -> Iterator[MessageRecord]    (outbound SMS/MMS, all pages)
    client.read_messages(ids) -> message_store.ReadResult   (up to 50 ids in one request)
    client.sync_messages(token=… | date_from=…) -> message_sync.SyncAnswer   (FSync / ISync)
    client.download_file(message_id, attachment_id, uri, write, max_bytes) -> Downloaded
    client.create_subscription(…) / get_subscription(id) / renew_subscription(id) /
        delete_subscription(id) -> subscriptions.SubscriptionInfo
    client.list_consents(page_token) -> consents.ConsentPage   (the account's SMS consent list)
    client.update_consents(updates) -> failed records             (PATCH, up to 1000)
    client.create_a2p_batch(from_number, messages) -> a2p.BatchInfo   (High Volume SMS)
    client.get_a2p_batch(batch_id) -> a2p.BatchInfo
    client.a2p_batch_messages(batch_id, since=…, before_page=…) -> Iterator[a2p.A2PMessage]

The client knows nothing of where tokens are kept. Its caller gives it a `token_source`: called
with None for a token to use, and with the token RingCentral just refused (401) for a fresh one;
the client then retries once. messaging/links/tokens.py gives the token source of a linked
user; `RingCentralClient.for_access_token` one that cannot refresh (while linking). Non-2xx
answers become `errors.RingCentralError` subclasses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from . import (
    a2p,
    consents,
    errors,
    http,
    limits,
    message_store,
    message_sync,
    multipart,
    paths,
    subscriptions,
)
from .records import MessageRecord, format_time, parse_message

log = logging.getLogger(__name__)

# Paging guards: an extension has a handful of numbers and the store is read for minutes of
# history; a server that never stops paging is a bug.
NUMBERS_PER_PAGE = 100
MAX_NUMBER_PAGES = 50
STORE_PER_PAGE = 250
MAX_STORE_PAGES = 40
ATTACH_AGAIN = "Attach the files again and send a new message."

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


@dataclass(frozen=True)
class Sent:
    """RingCentral's answer to an accepted send: its record of the message, the HTTP status and
    the answer's `X-Rate-Limit-*` headers."""

    record: MessageRecord
    http_status: int = 200
    rate_limit: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Downloaded:
    """A file fetched from the message store: its type as RingCentral served it, its size."""

    content_type: str
    size: int


class FileTooLarge(Exception):
    """A message-store file was larger than the caller accepts; nothing more was read."""


@dataclass
class RingCentralClient:
    """REST calls on behalf of one RingCentral user (see the module docstring)."""

    token_source: TokenSource
    session: requests.Session = field(default_factory=http.new_session, repr=False)

    @classmethod
    def for_access_token(cls, access_token: str) -> RingCentralClient:
        def token_source(stale: str | None) -> str:
            if stale is not None:
                raise errors.AuthExpired("access token refused and no refresh possible")
            return access_token

        return cls(token_source)

    # --- account and numbers ------------------------------------------------------------------

    def get_extension(self) -> ExtensionInfo:
        data = self._json("GET", paths.EXTENSION)
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
        data = self._json("GET", paths.ACCOUNT)
        if "id" not in data:
            raise errors.UnexpectedResponse("account without id")
        return AccountInfo(id=str(data["id"]), main_number=str(data.get("mainNumber") or ""))

    def list_numbers(self) -> list[PhoneNumberInfo]:
        """All phone numbers of the extension, following RingCentral's paging."""
        return [
            _phone_number(record)
            for record in self._records(
                paths.PHONE_NUMBERS, {}, per_page=NUMBERS_PER_PAGE, max_pages=MAX_NUMBER_PAGES
            )
            if record.get("phoneNumber")
        ]

    # --- the message store ------------------------------------------------------------------

    def sent_since(self, since: datetime) -> Iterator[MessageRecord]:
        """Outbound SMS/MMS records created at or after `since`, newest first, every page."""
        params = {"direction": "Outbound", "messageType": "SMS", "dateFrom": format_time(since)}
        for record in self._records(
            paths.MESSAGE_STORE, params, per_page=STORE_PER_PAGE, max_pages=MAX_STORE_PAGES
        ):
            if record.get("id") is not None:
                yield parse_message(record)

    def read_messages(self, ids) -> message_store.ReadResult:
        """Read `ids` (1 to `message_store.MAX_IDS_PER_READ`) with one request. Raises
        `errors.RingCentralError` when the whole request fails; a single unknown id is a 404
        for the request and is reported in `missing` instead."""
        request = message_store.build_read(ids)
        try:
            response = self._request(request.method, request.path, headers=dict(request.headers))
        except errors.NotFound:
            if len(request.ids) == 1:
                return message_store.ReadResult(missing={request.ids[0]})
            raise
        return message_store.parse_read(
            response.status_code, response.headers, response.content, request.ids
        )

    def sync_messages(
        self,
        *,
        token: str = "",
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        record_count: int | None = None,
    ) -> message_sync.SyncAnswer:
        """One message-sync request: incremental with `token`, else full (see message_sync).
        Raises `errors.FullSyncRequired` when RingCentral refuses the token."""
        if token:
            params = message_sync.incremental_params(token)
        else:
            params = message_sync.full_params(
                date_from=date_from, date_to=date_to, record_count=record_count
            )
        try:
            response = self._request("GET", paths.MESSAGE_SYNC, params=params)
        except errors.RingCentralError as exc:
            if token and exc.status == 400 and exc.code == message_sync.FULL_SYNC_REQUIRED:
                refused = errors.FullSyncRequired(exc.message, status=400, code=exc.code)
                refused.rate_limit = exc.rate_limit
                raise refused from exc
            raise
        try:
            data = response.json()
        except (ValueError, RecursionError):
            raise errors.UnexpectedResponse("message-sync answer is not JSON") from None
        if not isinstance(data, dict):
            raise errors.UnexpectedResponse("message-sync answer is not an object")
        return message_sync.parse_sync(data, errors.rate_limit_headers(response.headers))

    def download_file(
        self, message_id: str, attachment_id: str, uri: str, write, *, max_bytes: int
    ) -> Downloaded:
        """Stream one file of a stored message (`…/message-store/{id}/content/{attachmentId}`,
        Medium group) to `write(chunk)`. RingCentral serves files from a media host named in
        the attachment's `uri`; that address is used when it is RingCentral's (or the
        configured server's), else the path on the API server. Raises `FileTooLarge` past
        `max_bytes`, before writing the chunk that crosses it."""
        for value in (message_id, attachment_id):
            if not str(value).isascii() or not str(value).isdigit() or len(str(value)) > 32:
                raise ValueError("not a RingCentral message or attachment id")
        target = _media_address(uri) or (
            f"{paths.MESSAGE_STORE}/{message_id}/content/{attachment_id}"
        )
        response = self._request("GET", target, stream=True)
        try:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FileTooLarge(f"{declared} bytes")
            size = 0
            for chunk in response.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLarge(f"more than {max_bytes} bytes")
                write(chunk)
        except requests.RequestException as exc:
            raise errors.NetworkError("download interrupted", request_sent=None) from exc
        finally:
            response.close()
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return Downloaded(content_type=content_type, size=size)

    # --- webhook subscriptions --------------------------------------------------------------

    def create_subscription(
        self, *, address: str, token: str, expires_in: int, filters=subscriptions.EVENT_FILTERS
    ) -> subscriptions.SubscriptionInfo:
        body = subscriptions.build_create(address, token, expires_in, filters)
        return subscriptions.parse_subscription(self._json("POST", paths.SUBSCRIPTION, json=body))

    def get_subscription(self, subscription_id: str) -> subscriptions.SubscriptionInfo:
        path = f"{paths.SUBSCRIPTION}/{subscriptions.checked_id(subscription_id)}"
        return subscriptions.parse_subscription(self._json("GET", path))

    def renew_subscription(self, subscription_id: str) -> subscriptions.SubscriptionInfo:
        path = f"{paths.SUBSCRIPTION}/{subscriptions.checked_id(subscription_id)}/renew"
        return subscriptions.parse_subscription(self._json("POST", path))

    def delete_subscription(self, subscription_id: str) -> None:
        """Delete it at RingCentral; one that is already gone counts as deleted."""
        try:
            self._request(
                "DELETE", f"{paths.SUBSCRIPTION}/{subscriptions.checked_id(subscription_id)}"
            )
        except errors.NotFound:
            return

    # --- SMS consent list -----------------------------------------------------------------

    def list_consents(self, page_token: str = "") -> consents.ConsentPage:
        """One page (up to 1000 records) of the account's consent list, opt-outs and opt-ins."""
        data = self._json("GET", paths.SMS_CONSENTS, params=consents.list_params(page_token))
        return consents.parse_page(data)

    def all_consents(self) -> Iterator[consents.ConsentRecord]:
        """Every record of the account's consent list, following the page tokens."""
        token = ""
        for _ in range(consents.MAX_PAGES):
            page = self.list_consents(token)
            yield from page.records
            if not page.next_page_token or page.next_page_token == token:
                return
            token = page.next_page_token
        raise errors.UnexpectedResponse(f"consent list did not end after {consents.MAX_PAGES}")

    def update_consents(
        self, updates: list[consents.ConsentUpdate]
    ) -> list[tuple[consents.ConsentUpdate | None, str]]:
        """Write opt-outs/opt-ins; returns the records RingCentral refused, with why."""
        body = consents.build_update(updates)
        return consents.parse_failed(self._json("PATCH", paths.SMS_CONSENTS, json=body))

    # --- High Volume SMS -------------------------------------------------------------------
    #
    # Every call is one request of the Light group; the caller paces them (`before_page` runs
    # before each page of a listing, so every request can wait for the shared limiter).

    def create_a2p_batch(
        self, from_number: str, messages: Sequence[a2p.BatchMessage]
    ) -> a2p.BatchInfo:
        """POST one batch (`a2p.build_batch`: `ValueError` past the limits, nothing sent).
        The answer lists the recipients RingCentral rejected; no later read does."""
        body = a2p.build_batch(from_number, messages)
        data = self._json(
            "POST",
            paths.A2P_BATCHES,
            data=body,
            headers={"Content-Type": "application/json; charset=UTF-8"},
        )
        return a2p.parse_batch(data)

    def get_a2p_batch(self, batch_id: str) -> a2p.BatchInfo:
        return a2p.parse_batch(self._json("GET", f"{paths.A2P_BATCHES}/{_path_id(batch_id)}"))

    def a2p_batch_messages(
        self,
        batch_id: str,
        *,
        since: datetime | None = None,
        before_page: Callable[[], None] | None = None,
    ) -> Iterator[a2p.A2PMessage]:
        """Every message of a batch, all pages of up to 1000. RingCentral lists the last 24
        hours unless told otherwise: `since` (the batch's creation) reaches further back."""
        params: dict[str, Any] = {
            "batchId": batch_id,
            "perPage": limits.A2P_MESSAGES_PER_PAGE,
        }
        if since is not None:
            params["dateFrom"] = format_time(since)
        token = ""
        for _ in range(a2p.MAX_PAGES):
            if before_page is not None:
                before_page()
            page_params = {**params, "pageToken": token} if token else params
            records, next_token = a2p.parse_message_page(
                self._json("GET", paths.A2P_MESSAGES, params=page_params)
            )
            yield from records
            if not next_token or next_token == token:
                return
            token = next_token
        raise errors.UnexpectedResponse(f"High Volume messages did not end after {a2p.MAX_PAGES}")

    # --- sending ------------------------------------------------------------------------------
    #
    # A send is one POST of `multipart.build_message_request`'s body (JSON for a plain SMS,
    # multipart/form-data with files), streamed from storage. What the caller may do next
    # depends on how far the request got, which is why transport failures are split: a request
    # whose body was not read to its end cannot have been accepted; one that went out whole may
    # have been, and only the message store can tell (`sent_since`).

    def send(
        self,
        from_number: str,
        to_numbers: Sequence[str],
        text: str,
        files: Sequence[multipart.AttachmentSource] = (),
        *,
        not_after: float | None = None,
    ) -> Sent:
        """POST one message to `…/sms` and return what RingCentral accepted.

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

        def post(token: str) -> http.Answer:
            request = build_send_request(from_number, to_numbers, text, files)
            return self._post_message(request, token, not_after)

        token = self.token_source(None)
        response = post(token)
        if response.status_code == 401:
            # RingCentral checks the token before it reads the message: nothing was sent.
            log.info("RingCentral answered 401 to a send; refreshing once")
            response = post(self.token_source(token))
        if response.status_code >= 400:
            raise errors.from_response(response)
        return _accepted(response)

    @sensitive_variables("token", "headers")
    def _post_message(
        self, request: multipart.MessageRequest, token: str, not_after: float | None
    ) -> http.Answer:
        """One POST of a built body; transport failures sorted by whether it all went."""
        headers = {**request.headers, "Authorization": f"Bearer {token}"}
        try:
            # Checked last, just before the first byte goes out, so the window in which a stall
            # can still lead to a late request is as short as it can be.
            if not_after is not None and time.monotonic() > not_after:
                raise errors.SendTooLate("the claim on the message ran out before the POST")
            return http.post_message(
                paths.SEND,
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

    # --- plumbing -----------------------------------------------------------------------------

    def _records(
        self, path: str, params: dict[str, Any], *, per_page: int, max_pages: int
    ) -> Iterator[dict[str, Any]]:
        """The `records` of every page of a listing, in order, following RingCentral's paging
        (`paging.totalPages` when given, else `navigation.nextPage`)."""
        for page in range(1, max_pages + 1):
            data = self._json("GET", path, params={**params, "page": page, "perPage": per_page})
            for record in data.get("records") or ():
                if isinstance(record, dict):
                    yield record
            total_pages = (data.get("paging") or {}).get("totalPages")
            has_next = bool((data.get("navigation") or {}).get("nextPage"))
            if total_pages is not None:
                has_next = page < int(total_pages)
            if not has_next:
                return
        raise errors.UnexpectedResponse(f"{path} did not end after {max_pages} pages")

    def _json(self, method: str, path: str, **kwargs) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            data = response.json()
        except (ValueError, RecursionError):  # RecursionError: nested past Python's stack
            raise errors.UnexpectedResponse(f"{method} {path}: answer is not JSON") from None
        if not isinstance(data, dict):
            raise errors.UnexpectedResponse(f"{method} {path}: answer is not an object")
        return data

    @sensitive_variables("token")
    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Send with a token; on 401 ask for a fresh one once and retry once."""
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
        address = path if path.startswith("https://") else http.url(path)
        # Never follow a redirect with the token to wherever it points.
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, address, headers=headers, **kwargs)


def _path_id(value: str) -> str:
    """An id RingCentral gave us, checked before it goes into a path."""
    value = str(value)
    if (
        not value
        or len(value) > 64
        or not all(c.isascii() and (c.isalnum() or c == "-") for c in value)
    ):
        raise ValueError("not a RingCentral id")
    return value


def _media_address(uri: str) -> str:
    """The attachment's own `uri` when it may be given the token: https on a RingCentral
    host, or on the configured server (the emulator); else ""."""
    parts = urlsplit(uri or "")
    server = urlsplit(http.server_url())
    if parts.scheme == "https" and (parts.hostname or "").endswith(".ringcentral.com"):
        return uri
    if parts.scheme == server.scheme and parts.netloc == server.netloc and parts.path:
        # The configured server itself: by path, so plain http stays limited to loopback.
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return ""


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


def build_send_request(
    from_number: str,
    to_numbers: Sequence[str],
    text: str,
    files: Sequence[multipart.AttachmentSource] = (),
) -> multipart.MessageRequest:
    """The wire request for one message, with its files streamed from storage.

    Limits are checked again against the files as they are in storage now; any mismatch is a
    `MessageInvalid` with a reason for the user (nothing is sent).
    """
    try:
        return multipart.build_message_request(from_number, to_numbers, text, files)
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


def _accepted(response: http.Answer) -> Sent:
    """A 2xx answer to a send. RingCentral has the message, so an answer we cannot read is an
    unknown outcome (never a retry): the message store will have its id."""
    try:
        data = response.json()
    except (ValueError, RecursionError):
        data = None
    try:
        record = parse_message(data)
    except errors.UnexpectedResponse:
        raise errors.OutcomeUnknown(f"HTTP {response.status_code} without a message id") from None
    return Sent(
        record=record,
        http_status=response.status_code,
        rate_limit=errors.rate_limit_headers(response.headers),
    )
