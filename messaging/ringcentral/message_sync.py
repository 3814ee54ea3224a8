"""RingCentral's message sync (`GET …/message-sync`, Light group): the request parameters and
the answer.

    answer = client.sync_messages(date_from=…)            # FSync: the newest records, a token
    answer = client.sync_messages(token=answer.token)     # ISync: what was created or changed

A full sync (`FSync`) answers the records between `dateFrom` and `dateTo`, newest first, at
most `recordCount` of them, without paging; `olderRecordsExist` says that more lie before the
oldest one returned (the caller asks again with `dateTo` at that record). An incremental sync
(`ISync`) with the token of the previous answer gives the records created or modified since,
and a new token. Answers overlap by a few seconds, so a record may come twice. RingCentral
refuses a token it no longer honours with 400 `MSG-333` ("full synchronization is required"):
`client.sync_messages` raises `errors.FullSyncRequired` for it, and the caller starts again
with a full sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import errors
from .records import MessageRecord, format_time, parse_message, parse_time

FULL = "FSync"
INCREMENTAL = "ISync"
# RingCentral's code for a sync token it will not continue from.
FULL_SYNC_REQUIRED = "MSG-333"
# Text messages only (SMS and MMS are both `SMS` in RingCentral's store).
MESSAGE_TYPE = "SMS"


@dataclass
class SyncAnswer:
    records: list[MessageRecord]
    token: str
    sync_type: str
    sync_time: datetime | None = None
    older_exist: bool = False
    # The answer's headers, for the rate limiter (X-Rate-Limit-*).
    headers: dict[str, str] = field(default_factory=dict)


def full_params(
    *, date_from: datetime | None, date_to: datetime | None = None, record_count: int | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"syncType": FULL, "messageType": MESSAGE_TYPE}
    if date_from is not None:
        params["dateFrom"] = format_time(date_from)
    if date_to is not None:
        params["dateTo"] = format_time(date_to)
    if record_count is not None:
        params["recordCount"] = int(record_count)
    return params


def incremental_params(token: str) -> dict[str, Any]:
    if not token:
        raise ValueError("an incremental sync needs the token of an earlier sync")
    return {"syncType": INCREMENTAL, "syncToken": token}


def parse_sync(data: dict[str, Any], headers=None) -> SyncAnswer:
    """Read a sync answer; records without an id are skipped, a missing token is an error."""
    info = data.get("syncInfo")
    if not isinstance(info, dict) or not info.get("syncToken"):
        raise errors.UnexpectedResponse("message-sync answer without syncInfo.syncToken")
    records = []
    for item in data.get("records") or ():
        try:
            records.append(parse_message(item))
        except errors.UnexpectedResponse:
            continue
    return SyncAnswer(
        records=records,
        token=str(info["syncToken"]),
        sync_type=str(info.get("syncType") or ""),
        sync_time=parse_time(info.get("syncTime")),
        older_exist=info.get("olderRecordsExist") is True,
        headers=dict(headers or {}),
    )
