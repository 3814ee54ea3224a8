"""``/_emulator/``: a JSON API for steering the emulator from another process.

It is not part of RingCentral's API: it is never journaled, rate limited or faulted, and it has
no authentication, so the emulator should only listen on a loopback or private address.

    GET    /_emulator/health                 {"ok", "base_url", "now"}
    GET    /_emulator/journal?path_contains= {"entries": [JournalEntry...]}
    GET    /_emulator/faults                 {"pending": [{"fault", "remaining"}]}
    POST   /_emulator/faults                 body: Fault fields -> pending list
    DELETE /_emulator/faults                 drop pending faults
    POST   /_emulator/reset                  forget journal, faults, messages, deliveries
    GET    /_emulator/config                 current config
    POST   /_emulator/config                 body: fields to change -> config
    POST   /_emulator/recipients             body: {phone_number, outcome, error_code?,
                                             sent_after?, delivered_after?}; outcome null removes
    POST   /_emulator/advance                body: {seconds} -> {"now"}
    POST   /_emulator/tick                   evaluate due status changes now
    GET    /_emulator/messages               stored messages as RingCentral JSON
    GET    /_emulator/a2p-batches            High Volume batches (RingCentral JSON), each with
                                             its messages
    GET    /_emulator/deliveries             webhook delivery attempts
    GET    /_emulator/world                  apps (without secrets), extensions, numbers,
                                             recipient behaviours, contact scripts
    POST   /_emulator/authorize-code         body: {client_id, redirect_uri, extension_id,
                                             code_challenge?, method?} -> {"code"}
    POST   /_emulator/inbound                body: {from, to, text?, attachments?, also_to?,
                                             at?, read?} -> the stored record (RingCentral JSON)
    POST   /_emulator/outbound-elsewhere     body: {from, to: [...], text?, attachments?, at?}
                                             -> the stored record
    GET    /_emulator/opt-outs               {"records": [{"from", "to", "since"}]}
    POST   /_emulator/contacts               body: {phone_number, script, delay?}; script
                                             reply | photo | stop, null removes the script
    POST   /_emulator/sync-tokens/invalidate body: {extension_id?} (all when absent)
                                             -> {"invalidated": count}

Attachments are ``[{"filename", "content_type", "data_base64"}]``; ``at`` is a time on the
emulator clock (seconds, as ``now`` in health), not after now.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .faults import Fault
from .wire import Request, Response

if TYPE_CHECKING:
    from .emulator import Emulator


class _Invalid(Exception):
    pass


def _fields(data: dict[str, Any], required: set[str], optional: set[str]) -> None:
    unknown = set(data) - required - optional
    if unknown:
        raise _Invalid(f"unknown fields: {sorted(unknown)}")
    missing = required - set(data)
    if missing:
        raise _Invalid(f"required fields: {sorted(missing)}")


def _attachments(value: Any) -> list[tuple[str, str, bytes]]:
    if not isinstance(value, list):
        raise _Invalid("attachments must be a list")
    files = []
    for item in value:
        if not isinstance(item, dict):
            raise _Invalid("an attachment is {filename, content_type, data_base64}")
        _fields(item, {"filename", "content_type", "data_base64"}, set())
        try:
            data = base64.b64decode(item["data_base64"], validate=True)
        except (binascii.Error, TypeError) as exc:
            raise _Invalid(f"data_base64 of {item['filename']!r} is not base64") from exc
        files.append((item["filename"], item["content_type"], data))
    return files


def _numbers(value: Any, name: str) -> list[str]:
    if not isinstance(value, list):
        raise _Invalid(f"{name} must be a list of phone numbers")
    return value


def _body(req: Request) -> dict[str, Any]:
    if not req.body:
        return {}
    try:
        data = json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Invalid(f"the body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _Invalid("the body must be a JSON object")
    return data


def _health(emu: Emulator, req: Request) -> Any:
    return {"ok": True, "base_url": emu.base_url, "now": emu.now()}


def _journal(emu: Emulator, req: Request) -> Any:
    entries = emu.journal_entries(path_contains=req.query_one("path_contains"))
    return {"entries": [e.to_dict() for e in entries]}


def _pending_faults(emu: Emulator) -> Any:
    return {
        "pending": [
            {"fault": dataclasses.asdict(fault), "remaining": remaining}
            for fault, remaining in emu.faults.pending()
        ]
    }


def _faults_get(emu: Emulator, req: Request) -> Any:
    return _pending_faults(emu)


def _faults_post(emu: Emulator, req: Request) -> Any:
    emu.inject(Fault.from_dict(_body(req)))
    return _pending_faults(emu)


def _faults_delete(emu: Emulator, req: Request) -> Any:
    emu.faults.clear()
    return _pending_faults(emu)


def _reset(emu: Emulator, req: Request) -> Any:
    emu.reset()
    return {"ok": True}


def _config_get(emu: Emulator, req: Request) -> Any:
    return emu.config.to_dict()


def _config_post(emu: Emulator, req: Request) -> Any:
    emu.update_config(**_body(req))
    return emu.config.to_dict()


def _recipients(emu: Emulator, req: Request) -> Any:
    data = _body(req)
    allowed = {"phone_number", "outcome", "error_code", "sent_after", "delivered_after"}
    if set(data) - allowed:
        raise _Invalid(f"unknown fields: {sorted(set(data) - allowed)}")
    if "phone_number" not in data:
        raise _Invalid("phone_number is required")
    if data.get("outcome", "delivered") is None:
        emu.clear_recipient_behaviour(data["phone_number"])
        return {"ok": True}
    emu.set_recipient_behaviour(
        data["phone_number"],
        outcome=data.get("outcome", "delivered"),
        error_code=data.get("error_code"),
        sent_after=data.get("sent_after"),
        delivered_after=data.get("delivered_after"),
    )
    return {"ok": True}


def _advance(emu: Emulator, req: Request) -> Any:
    seconds = _body(req).get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise _Invalid("seconds must be a number")
    emu.advance(seconds)
    return {"now": emu.now()}


def _tick(emu: Emulator, req: Request) -> Any:
    emu.tick()
    return {"now": emu.now()}


def _messages(emu: Emulator, req: Request) -> Any:
    now = emu.now()
    return {"records": [m.to_json(emu.base_url, now) for m in emu.messages]}


def _a2p_batches(emu: Emulator, req: Request) -> Any:
    """Every account's High Volume batches, newest first, each with its messages."""
    now = emu.now()
    return {
        "records": [
            {
                **batch.to_json(now),
                "messages": [m.to_json(now, detailed=True) for m in batch.messages],
            }
            for batch in emu.a2p.batches()
        ]
    }


def _deliveries(emu: Emulator, req: Request) -> Any:
    return {"records": [dataclasses.asdict(d) for d in emu.deliveries]}


def _world(emu: Emulator, req: Request) -> Any:
    world = emu.world
    return {
        "apps": [
            {"client_id": a.client_id, "redirect_uris": a.redirect_uris, "scopes": list(a.scopes)}
            for a in world.apps.values()
        ],
        "accounts": [dataclasses.asdict(a) for a in world.accounts.values()],
        "extensions": [dataclasses.asdict(e) for e in world.extensions.values()],
        "recipients": {k: dataclasses.asdict(v) for k, v in world.behaviours.items()},
        "contacts": {k: dataclasses.asdict(v) for k, v in emu.contacts.all().items()},
    }


def _authorize_code(emu: Emulator, req: Request) -> Any:
    data = _body(req)
    try:
        code = emu.authorize_code(
            data["client_id"],
            data["redirect_uri"],
            int(data["extension_id"]),
            code_challenge=data.get("code_challenge"),
            method=data.get("method", "S256"),
        )
    except KeyError as exc:
        raise _Invalid(f"{exc.args[0]} is required") from exc
    return {"code": code}


def _inbound(emu: Emulator, req: Request) -> Any:
    data = _body(req)
    _fields(data, {"from", "to"}, {"text", "attachments", "also_to", "at", "read"})
    read = data.get("read", False)
    if not isinstance(read, bool):
        raise _Invalid("read must be true or false")
    message = emu.inbound(
        data["from"],
        data["to"],
        data.get("text", ""),
        _attachments(data.get("attachments", [])),
        _numbers(data.get("also_to", []), "also_to"),
        at=data.get("at"),
        read=read,
    )
    return message.to_json(emu.base_url, emu.now())


def _outbound_elsewhere(emu: Emulator, req: Request) -> Any:
    data = _body(req)
    _fields(data, {"from", "to"}, {"text", "attachments", "at"})
    message = emu.outbound_elsewhere(
        data["from"],
        _numbers(data["to"], "to"),
        data.get("text", ""),
        _attachments(data.get("attachments", [])),
        at=data.get("at"),
    )
    return message.to_json(emu.base_url, emu.now())


def _opt_outs(emu: Emulator, req: Request) -> Any:
    pairs = sorted(emu.opt_outs.pairs())
    return {"records": [{"from": f, "to": t, "since": since} for f, t, since in pairs]}


def _contacts(emu: Emulator, req: Request) -> Any:
    data = _body(req)
    _fields(data, {"phone_number", "script"}, {"delay"})
    if data["script"] is None:
        emu.clear_contact_script(data["phone_number"])
    else:
        emu.script_contact(data["phone_number"], data["script"], data.get("delay", 5.0))
    return {"ok": True}


def _invalidate_sync_tokens(emu: Emulator, req: Request) -> Any:
    data = _body(req)
    _fields(data, set(), {"extension_id"})
    extension_id = data.get("extension_id")
    if extension_id is not None and (
        isinstance(extension_id, bool) or not isinstance(extension_id, int)
    ):
        raise _Invalid("extension_id must be an integer")
    return {"invalidated": emu.invalidate_sync_tokens(extension_id)}


ROUTES: dict[tuple[str, str], Callable[[Emulator, Request], Any]] = {
    ("GET", "/_emulator/health"): _health,
    ("GET", "/_emulator/journal"): _journal,
    ("GET", "/_emulator/faults"): _faults_get,
    ("POST", "/_emulator/faults"): _faults_post,
    ("DELETE", "/_emulator/faults"): _faults_delete,
    ("POST", "/_emulator/reset"): _reset,
    ("GET", "/_emulator/config"): _config_get,
    ("POST", "/_emulator/config"): _config_post,
    ("POST", "/_emulator/recipients"): _recipients,
    ("POST", "/_emulator/advance"): _advance,
    ("POST", "/_emulator/tick"): _tick,
    ("GET", "/_emulator/messages"): _messages,
    ("GET", "/_emulator/a2p-batches"): _a2p_batches,
    ("GET", "/_emulator/deliveries"): _deliveries,
    ("GET", "/_emulator/world"): _world,
    ("POST", "/_emulator/authorize-code"): _authorize_code,
    ("POST", "/_emulator/inbound"): _inbound,
    ("POST", "/_emulator/outbound-elsewhere"): _outbound_elsewhere,
    ("GET", "/_emulator/opt-outs"): _opt_outs,
    ("POST", "/_emulator/contacts"): _contacts,
    ("POST", "/_emulator/sync-tokens/invalidate"): _invalidate_sync_tokens,
}


def handle(emu: Emulator, req: Request) -> Response:
    route = ROUTES.get((req.method, req.path.rstrip("/")))
    if route is None:
        return Response.json(404, {"error": f"no control endpoint {req.method} {req.path}"})
    try:
        return Response.json(200, route(emu, req))
    except (_Invalid, ValueError, TypeError) as exc:
        return Response.json(400, {"error": str(exc)})
