"""RingCentral's SMS consent list (API v2): reading it, writing to it, and its events.

    page = client.list_consents(page_token="")          # Light group, SMS permission
    failed = client.update_consents([ConsentUpdate(…), …])   # up to 1000 records a request
    records = parse_event(payload["body"])              # a consents event notification

A record says whether contact `to` is opted out of (`OptOut`) or back in to (`OptIn`) texts from
`from`, a number of the account or `"*"` for every one of them, with its `source` (`Recipient`:
the contact texted a keyword; `Api`: written by an app; `Upstream`, `Carrier`) and the time it
last changed. Listing returns only `OptOut` records unless asked; both are asked for here, so
an opt-in seen after an opt-out lifts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import errors
from .records import parse_time

OPT_OUT = "OptOut"
OPT_IN = "OptIn"
EVERY_NUMBER = "*"
PER_PAGE = 1000
MAX_UPDATE = 1000
# A guard: an account listing more pages than this is a server that never stops paging.
MAX_PAGES = 1000
EVENT_SUFFIX = "/sms/consents"

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
# RingCentral writes nanoseconds in event times (…06.473705035Z); Python reads at most six digits.
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class ConsentRecord:
    from_number: str  # E.164, or "*" for every number of the account
    to_number: str
    opted_out: bool
    source: str
    changed_at: datetime | None


@dataclass(frozen=True)
class ConsentPage:
    records: list[ConsentRecord]
    next_page_token: str
    skipped: int  # records that were not readable


@dataclass(frozen=True)
class ConsentUpdate:
    from_number: str
    to_number: str
    opted_out: bool


def list_params(page_token: str = "") -> list[tuple[str, str]]:
    params = [("optStatus", OPT_OUT), ("optStatus", OPT_IN), ("perPage", str(PER_PAGE))]
    if page_token:
        params.append(("pageToken", page_token))
    return params


def build_update(updates: list[ConsentUpdate]) -> dict[str, Any]:
    """The JSON body of `PATCH …/sms/consents`; records written by this app are `Api`."""
    if not 1 <= len(updates) <= MAX_UPDATE:
        raise ValueError(f"1 to {MAX_UPDATE} records a request")
    return {
        "records": [
            {
                "from": update.from_number,
                "to": update.to_number,
                "optStatus": OPT_OUT if update.opted_out else OPT_IN,
                "source": "Api",
            }
            for update in updates
        ]
    }


def parse_time_precise(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = _FRACTION.sub(r"\1", value)
    return parse_time(value)


def parse_record(data: Any) -> ConsentRecord | None:
    """One record, or None when it is not one this portal can apply."""
    if not isinstance(data, dict):
        return None
    sender, target, status = data.get("from"), data.get("to"), data.get("optStatus")
    if status not in (OPT_OUT, OPT_IN):
        return None
    if not isinstance(target, str) or not _E164.match(target):
        return None
    if data.get("coverage") == "Account" and sender in (None, ""):
        sender = EVERY_NUMBER
    if not isinstance(sender, str) or not (sender == EVERY_NUMBER or _E164.match(sender)):
        return None
    return ConsentRecord(
        from_number=sender,
        to_number=target,
        opted_out=status == OPT_OUT,
        source=str(data.get("source") or ""),
        changed_at=parse_time_precise(data.get("lastModifiedTime")),
    )


def parse_page(data: dict[str, Any]) -> ConsentPage:
    raw = data.get("records")
    if not isinstance(raw, list):
        raise errors.UnexpectedResponse("consent list answer without records")
    records = [parse_record(item) for item in raw]
    paging = data.get("paging") if isinstance(data.get("paging"), dict) else {}
    return ConsentPage(
        records=[r for r in records if r is not None],
        next_page_token=str(paging.get("nextPageToken") or ""),
        skipped=sum(1 for r in records if r is None),
    )


def parse_failed(data: dict[str, Any]) -> list[tuple[ConsentUpdate | None, str]]:
    """The records a PATCH refused, each with RingCentral's reason."""
    failed = []
    for item in data.get("failedRecords") or ():
        if not isinstance(item, dict):
            continue
        error = item.get("error") if isinstance(item.get("error"), dict) else {}
        reason = f"{error.get('errorCode') or ''} {error.get('message') or ''}".strip()
        record = parse_record({**item, "lastModifiedTime": None})
        update = (
            ConsentUpdate(record.from_number, record.to_number, record.opted_out)
            if record
            else None
        )
        failed.append((update, reason or "refused"))
    return failed


def is_event(payload: dict[str, Any]) -> bool:
    event = str(payload.get("event") or "")
    return event.startswith("/restapi/v2/accounts/") and event.endswith(EVENT_SUFFIX)


def parse_event(body: Any) -> tuple[list[ConsentRecord], int]:
    """The records of a consents notification body (`{"records": [...]}`), and how many of
    its records were not readable."""
    raw = body.get("records") if isinstance(body, dict) else None
    if not isinstance(raw, list):
        return [], 1
    records = [parse_record(item) for item in raw]
    return [r for r in records if r is not None], sum(1 for r in records if r is None)
