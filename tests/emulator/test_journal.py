"""The journal: what arrived on the wire, per request, with secrets redacted."""

from __future__ import annotations

import hashlib

from .helpers import (
    CLIENT_ID,
    REDIRECT_URI,
    build_multipart,
    exchange,
    file_part,
    json_part,
    pkce_pair,
)
from .helpers import message_body as body_of

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 300
JPEG = b"\xff\xd8\xff" + b"\x02" * 500


def test_multipart_parts_are_recorded_in_order_with_headers_size_and_sha256(api, emu):
    parts = [json_part(body_of()), file_part(PNG, "a.png"), file_part(JPEG, "b.jpg", "image/jpeg")]
    raw, boundary = build_multipart(parts)
    response = api.send_multipart(raw, boundary)
    assert response.status_code == 200
    entry = emu.journal_entries(path_contains="/sms")[-1]
    assert entry.content_type == f"multipart/form-data; boundary={boundary}"
    assert [p.header("Content-Type") for p in entry.parts] == [
        "application/json",
        "image/png",
        "image/jpeg",
    ]
    assert entry.parts[1].size == len(PNG)
    assert entry.parts[1].sha256 == hashlib.sha256(PNG).hexdigest()
    assert entry.parts[2].sha256 == hashlib.sha256(JPEG).hexdigest()
    assert entry.parts[2].header("content-disposition").endswith('filename="b.jpg"')
    assert entry.outcome == "accepted"
    assert entry.message_id == response.json()["id"]
    assert entry.status == 200


def test_the_authorization_header_is_redacted(api, emu):
    api.get("/restapi/v1.0/account/~")
    entry = emu.journal[-1]
    assert entry.header("Authorization") == "Bearer [redacted]"
    assert api.token not in str(entry.to_dict())


def test_json_bodies_are_recorded_parsed(api, emu):
    api.send_sms("recorded")
    entry = emu.journal[-1]
    assert entry.json["text"] == "recorded"
    assert entry.method == "POST"
    assert entry.extension_id is not None and entry.client_id == CLIENT_ID


def test_rejections_are_recorded_with_their_error_code(api, emu):
    api.send_sms(to=["+16505550199", "+16505550199"])
    entry = emu.journal[-1]
    assert entry.outcome == "rejected"
    assert entry.status == 400
    assert entry.error_code == "CMN-406"


def test_token_requests_keep_field_names_but_not_secrets(emu, app, ext):
    verifier, challenge = pkce_pair()
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id, code_challenge=challenge)
    tokens = exchange(emu.base_url, code, code_verifier=verifier).json()
    entry = emu.journal_entries(path_contains="/oauth/token")[-1]
    assert entry.form["grant_type"] == ["authorization_code"]
    assert entry.form["code"] == ["[redacted]"]
    assert entry.form["code_verifier"] == ["[redacted]"]
    assert entry.header("Authorization") == "Basic [redacted]"
    assert code not in str(entry.to_dict())
    assert verifier not in str(entry.to_dict())
    assert tokens["access_token"]


def test_queries_and_paths_are_recorded(api, emu):
    api.get("/restapi/v1.0/account/~/extension/~/message-store", params={"perPage": "5"})
    entry = emu.journal[-1]
    assert entry.path == "/restapi/v1.0/account/~/extension/~/message-store"
    assert entry.query == {"perPage": ["5"]}


def test_journal_entries_filter_by_path(api, emu):
    api.get("/restapi/v1.0/account/~")
    api.send_sms()
    assert [e.method for e in emu.journal_entries(path_contains="/sms")] == ["POST"]
    assert len(emu.journal) == 2


def test_reset_forgets_journal_messages_and_faults_but_keeps_users(api, emu, ext):
    api.send_sms()
    emu.reset()
    assert emu.journal == []
    assert len(emu.messages) == 0
    assert api.get("/restapi/v1.0/account/~/extension/~").json()["id"] == ext.id
