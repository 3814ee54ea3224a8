"""``/restapi/v2/accounts/{accountId}/sms/consents``: the account's SMS consent list.

GET lists records (filters ``from``, ``to``, ``optStatus`` — ``OptOut`` when left out —
``coverage``; pages by ``pageToken``/``perPage``, at most 1000 a page). PATCH adds or updates up
to 1000 records, each ``{from, to, optStatus, source}``; the records it cannot take come back in
``failedRecords`` with an error each, the others are applied. Every change notifies the
subscriptions with the consents event filter (``subscriptions.py``), and a send to an
opted-out pair ends SendingFailed with SMS-RC-413 (``messages.py``).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from .clock import iso
from .errors import ApiError, invalid_parameter
from .identity import check_path_owner
from .optout import EVERY_NUMBER, OPT_IN, OPT_OUT, SOURCES
from .state import E164
from .wire import Request, Response

if TYPE_CHECKING:
    from .emulator import Emulator

MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 100
MAX_UPDATE_RECORDS = 1000
STATUSES = (OPT_OUT, OPT_IN)
COVERAGES = ("PhoneNumber", "Account", "CampaignType")


def _numbers(req: Request, name: str) -> set[str] | None:
    values = req.query.get(name)
    if not values:
        return None
    wanted = set()
    for value in values:
        for item in value.split(","):
            if not E164.match(item):
                raise invalid_parameter(name)
            wanted.add(item)
    return wanted


def _choices(req: Request, name: str, allowed: tuple[str, ...]) -> set[str] | None:
    values = req.query.get(name)
    if not values:
        return None
    chosen = {item for value in values for item in value.split(",")}
    if not chosen <= set(allowed):
        raise invalid_parameter(name)
    return chosen


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"consents:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix != "consents" or not number.isdigit():
            raise ValueError
        return int(number)
    except ValueError:
        raise invalid_parameter("pageToken") from None


def _per_page(req: Request) -> int:
    raw = req.query_one("perPage")
    if raw is None:
        return DEFAULT_PER_PAGE
    try:
        value = int(raw)
    except ValueError:
        raise invalid_parameter("perPage") from None
    if value < 1:
        raise invalid_parameter("perPage")
    # "If the provided value in the request is greater than a maximum, the maximum is applied."
    return min(value, MAX_PER_PAGE)


def handle_list(emu: Emulator, req: Request) -> Response:
    check_path_owner(emu, req)
    assert req.auth is not None
    senders = _numbers(req, "from")
    targets = _numbers(req, "to")
    statuses = _choices(req, "optStatus", STATUSES) or {OPT_OUT}
    coverages = _choices(req, "coverage", COVERAGES)
    per_page = _per_page(req)
    offset = _offset(req.query_one("pageToken"))
    found = [
        entry
        for entry in emu.opt_outs.entries(req.auth.account.id)
        if entry.opt_status in statuses
        and (senders is None or entry.from_number in senders)
        and (targets is None or entry.to_number in targets)
        and (coverages is None or entry.coverage in coverages)
    ]
    chunk = found[offset : offset + per_page]
    paging: dict[str, Any] = {"perPage": per_page, "firstPageToken": _token(0)}
    if chunk:
        paging["pageToken"] = _token(offset)
    if offset + per_page < len(found):
        paging["nextPageToken"] = _token(offset + per_page)
    if offset > 0:
        paging["previousPageToken"] = _token(max(offset - per_page, 0))
    records = [entry.to_json(iso) for entry in chunk]
    return Response.json(200, {"records": records, "paging": paging})


def _record_error(record: Any, emu: Emulator, account_id: str) -> ApiError | None:
    if not isinstance(record, dict):
        return invalid_parameter("records", "A record must be an object")
    for name in ("from", "to", "optStatus", "source"):
        if name not in record:
            return ApiError(400, "CMN-100", f"Parameter [{name}] is required", parameter_name=name)
    sender, target = record["from"], record["to"]
    if not isinstance(target, str) or not E164.match(target):
        return invalid_parameter("to")
    if not isinstance(sender, str) or not (sender == EVERY_NUMBER or E164.match(sender)):
        return invalid_parameter("from")
    if record["optStatus"] not in STATUSES:
        return invalid_parameter("optStatus")
    if record["source"] not in SOURCES:
        return invalid_parameter("source")
    if sender != EVERY_NUMBER:
        owner = emu.world.owner_of(sender)
        if owner is None or owner.account_id != account_id:
            return ApiError(
                404,
                "CMN-102",
                "Resource for parameter [from] is not found",
                parameter_name="from",
            )
    return None


def handle_update(emu: Emulator, req: Request) -> Response:
    check_path_owner(emu, req)
    assert req.auth is not None
    if req.media_type != "application/json":
        raise ApiError(415, "CMN-104", f"Unsupported Media Type: {req.content_type or '(none)'}")
    data = req.json()
    records = data.get("records") if isinstance(data, dict) else None
    if not isinstance(records, list) or not 1 <= len(records) <= MAX_UPDATE_RECORDS:
        raise invalid_parameter(
            "records", f"Parameter [records] must hold 1 to {MAX_UPDATE_RECORDS} records"
        )
    account_id = req.auth.account.id
    failed = []
    now = emu.now()
    for record in records:
        error = _record_error(record, emu, account_id)
        if error is not None:
            failed.append({**(record if isinstance(record, dict) else {}), "error": error.entry()})
            continue
        emu.set_consent(
            record["from"],
            record["to"],
            record["optStatus"],
            source=record["source"],
            at=now,
            account_id=account_id,
        )
    return Response.json(200, {"failedRecords": failed} if failed else {})
