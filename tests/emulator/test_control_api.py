"""/_emulator/: steering the emulator from another process over HTTP."""

from __future__ import annotations

import requests

from .helpers import CLIENT_ID, RECIPIENT, REDIRECT_URI, control, error_code, exchange


def test_health_reports_the_base_url(emu):
    body = control(emu, "GET", "health").json()
    assert body["ok"] is True
    assert body["base_url"] == emu.base_url


def test_the_journal_is_served_as_json_and_control_calls_are_not_journaled(api, emu):
    api.send_sms("over http")
    entries = control(emu, "GET", "journal").json()["entries"]
    assert [e["path"] for e in entries] == ["/restapi/v1.0/account/~/extension/~/sms"]
    assert entries[0]["json"]["text"] == "over http"
    assert control(emu, "GET", "journal", params={"path_contains": "/nothing"}).json() == {
        "entries": []
    }


def test_faults_can_be_injected_over_http(api, emu):
    answer = control(emu, "POST", "faults", json={"kind": "status", "status": 503})
    assert answer.status_code == 200
    assert answer.json()["pending"][0]["remaining"] == 1
    assert api.send_sms().status_code == 503
    assert control(emu, "GET", "faults").json()["pending"] == []


def test_an_invalid_fault_is_a_400(emu):
    assert control(emu, "POST", "faults", json={"kind": "meteor"}).status_code == 400


def test_reset_over_http_forgets_messages(api, emu):
    api.send_sms()
    assert control(emu, "POST", "reset").status_code == 200
    assert len(emu.messages) == 0


def test_config_changes_apply_at_once(api, emu):
    answer = control(emu, "POST", "config", json={"rate_limits": {"Light": 1}})
    assert answer.json()["rate_limits"]["Light"] == 1
    assert answer.json()["rate_limits"]["Medium"] == 40
    assert api.get("/restapi/v1.0/account/~").status_code == 200
    assert api.get("/restapi/v1.0/account/~").status_code == 429


def test_an_unknown_config_field_is_a_400(emu):
    assert control(emu, "POST", "config", json={"warp_speed": 9}).status_code == 400


def test_recipient_behaviour_and_advance_over_http(api, emu):
    control(
        emu,
        "POST",
        "recipients",
        json={"phone_number": RECIPIENT, "outcome": "sending_failed", "error_code": "SMS-RC-413"},
    )
    message_id = api.send_sms().json()["id"]
    assert control(emu, "POST", "advance", json={"seconds": 5}).status_code == 200
    body = api.get(f"/restapi/v1.0/account/~/extension/~/message-store/{message_id}").json()
    assert body["messageStatus"] == "SendingFailed"
    assert body["deliveryErrorCode"] == "SMS-RC-413"
    records = control(emu, "GET", "messages").json()["records"]
    assert records[0]["messageStatus"] == "SendingFailed"


def test_an_authorization_code_can_be_issued_over_http(emu, app, ext):
    answer = control(
        emu,
        "POST",
        "authorize-code",
        json={"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "extension_id": ext.id},
    )
    assert exchange(emu.base_url, answer.json()["code"]).status_code == 200


def test_the_world_lists_users_without_app_secrets(emu, app, ext):
    world = control(emu, "GET", "world").json()
    assert world["extensions"][0]["id"] == ext.id
    assert "client_secret" not in str(world["apps"])


def test_unknown_control_paths_are_404_and_not_ringcentral_errors(emu):
    response = control(emu, "GET", "nope")
    assert response.status_code == 404
    assert "errors" not in response.json()


def test_ringcentral_paths_still_answer_ringcentral_errors(emu):
    response = requests.get(f"{emu.base_url}/restapi/v1.0/nope", timeout=10)
    assert response.status_code == 404
    assert error_code(response) == "CMN-120"
