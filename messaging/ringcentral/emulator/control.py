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
    GET    /_emulator/deliveries             webhook delivery attempts
    GET    /_emulator/world                  apps (without secrets), extensions, numbers
    POST   /_emulator/authorize-code         body: {client_id, redirect_uri, extension_id,
                                             code_challenge?, method?} -> {"code"}
"""

from __future__ import annotations

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
    ("GET", "/_emulator/deliveries"): _deliveries,
    ("GET", "/_emulator/world"): _world,
    ("POST", "/_emulator/authorize-code"): _authorize_code,
}


def handle(emu: Emulator, req: Request) -> Response:
    route = ROUTES.get((req.method, req.path.rstrip("/")))
    if route is None:
        return Response.json(404, {"error": f"no control endpoint {req.method} {req.path}"})
    try:
        return Response.json(200, route(emu, req))
    except (_Invalid, ValueError, TypeError) as exc:
        return Response.json(400, {"error": str(exc)})
