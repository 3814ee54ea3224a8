"""OAuth: authorize (consent page), code exchange, PKCE, refresh rotation, revoke, sessions."""

from __future__ import annotations

import pytest
import requests

from messaging.ringcentral.emulator import EmulatorConfig

from .helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    browser_login,
    consent_ticket,
    error_code,
    exchange,
    pkce_pair,
    query_of,
    refresh,
    token_request,
)

ME = "/restapi/v1.0/account/~/extension/~"


def authorize(emu, accept: str = "text/html", **params: str) -> requests.Response:
    query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI}
    query.update(params)
    return requests.get(
        f"{emu.base_url}/restapi/oauth/authorize",
        params={k: v for k, v in query.items() if v is not None},
        headers={"Accept": accept},
        allow_redirects=False,
        timeout=10,
    )


def call_me(emu, access_token: str) -> requests.Response:
    return requests.get(
        emu.base_url + ME, headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )


def login(emu, ext, **extra: str) -> dict:
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id)
    response = exchange(emu.base_url, code, **extra)
    assert response.status_code == 200, response.text
    return response.json()


# -- authorize -------------------------------------------------------------------------------


def test_authorize_shows_a_consent_page_listing_the_extensions(emu, app, ext, other_ext):
    page = authorize(emu, state="s1")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Ada Lovelace" in page.text and "Grace Hopper" in page.text
    assert 'action="/restapi/oauth/authorize"' in page.text
    assert 'value="approve"' in page.text and 'value="deny"' in page.text


def test_approving_redirects_with_code_state_and_expires_in(emu, app, ext):
    query = browser_login(emu.base_url, ext.id, state="xyz-state")
    assert query["state"] == "xyz-state"
    assert query["expires_in"] == "60"
    assert query["code"]
    assert exchange(emu.base_url, query["code"]).status_code == 200


def test_denying_redirects_with_access_denied_and_state(emu, app, ext):
    page = authorize(emu, state="keep-me")
    answer = requests.post(
        f"{emu.base_url}/restapi/oauth/authorize",
        data={"ticket": consent_ticket(page.text), "decision": "deny"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(REDIRECT_URI)
    query = query_of(answer.headers["Location"])
    assert query["error"] == "access_denied"
    assert query["error_description"]
    assert query["state"] == "keep-me"
    assert "code" not in query


def test_consent_ticket_cannot_be_used_twice(emu, app, ext):
    ticket = consent_ticket(authorize(emu).text)
    form = {"ticket": ticket, "extension_id": str(ext.id), "decision": "approve"}
    url = f"{emu.base_url}/restapi/oauth/authorize"
    assert requests.post(url, data=form, allow_redirects=False, timeout=10).status_code == 302
    again = requests.post(url, data=form, allow_redirects=False, timeout=10)
    assert again.status_code == 400
    assert "Location" not in again.headers


def test_unregistered_redirect_uri_gets_a_400_page_never_a_redirect(emu, app, ext):
    page = authorize(emu, redirect_uri="http://evil.test/cb")
    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "OAU-109" in page.text


def test_unknown_client_gets_a_400_error_body(emu, app, ext):
    page = authorize(emu, accept="application/json", client_id="nobody")
    assert page.status_code == 400
    assert page.json()["error"] == "invalid_client"
    assert "Location" not in page.headers


def test_response_type_other_than_code_is_rejected(emu, app, ext):
    page = authorize(emu, accept="application/json", response_type="token")
    assert page.status_code == 400
    assert page.json()["error"] == "unsupported_response_type"


def test_unknown_code_challenge_method_is_rejected(emu, app, ext):
    _, challenge = pkce_pair()
    page = authorize(
        emu, accept="application/json", code_challenge=challenge, code_challenge_method="S512"
    )
    assert page.status_code == 400
    assert page.json()["error"] == "invalid_request"


@pytest.mark.parametrize("config", [EmulatorConfig(consent_page=False)])
def test_without_consent_page_authorize_redirects_at_once_for_the_hinted_user(
    emu, app, ext, other_ext
):
    answer = authorize(emu, state="st", login_hint=other_ext.email)
    assert answer.status_code == 302
    query = query_of(answer.headers["Location"])
    assert query["state"] == "st"
    tokens = exchange(emu.base_url, query["code"]).json()
    assert tokens["owner_id"] == str(other_ext.id)


# -- code exchange ---------------------------------------------------------------------------


def test_code_exchange_returns_the_token_info_fields(emu, app, ext):
    tokens = login(emu, ext)
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["refresh_token_expires_in"] == 604800
    assert tokens["scope"] == (
        "SMS ReadMessages EditMessages ReadAccounts SubscriptionWebhook A2PSMS"
    )
    assert tokens["owner_id"] == str(ext.id)
    assert tokens["endpoint_id"] and tokens["session_id"]
    assert call_me(emu, tokens["access_token"]).status_code == 200


def test_token_endpoint_accepts_only_urlencoded_forms(emu, app, ext):
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id)
    response = requests.post(
        f"{emu.base_url}/restapi/oauth/token",
        json={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert response.status_code == 415


def test_token_request_without_client_authentication_is_invalid_client(emu, app, ext):
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    response = token_request(emu.base_url, form, client=None)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert error_code(response).startswith("OAU-")


def test_token_request_with_a_wrong_secret_is_invalid_client_oau_146(emu, app, ext):
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    response = token_request(emu.base_url, form, client=(CLIENT_ID, "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert error_code(response) == "OAU-146"


def test_error_bodies_combine_oauth_error_and_ringcentral_errors(emu, app, ext):
    response = exchange(emu.base_url, "no-such-code-at-all")
    body = response.json()
    assert response.status_code == 400
    assert body["error"] == "invalid_grant"
    assert body["error_description"]
    assert body["errors"][0]["errorCode"] == "OAU-106"
    assert body["errors"][0]["message"]


def test_a_reused_code_is_invalid_grant_oau_106_and_revokes_the_first_session(emu, app, ext):
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id)
    first = exchange(emu.base_url, code)
    assert first.status_code == 200
    second = exchange(emu.base_url, code)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert error_code(second) == "OAU-106"
    assert call_me(emu, first.json()["access_token"]).status_code == 401


def test_an_expired_code_is_invalid_grant_oau_108(emu, app, ext):
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id)
    emu.advance(61)
    response = exchange(emu.base_url, code)
    assert response.status_code == 400
    assert error_code(response) == "OAU-108"


def test_a_code_still_works_just_before_it_expires(emu, app, ext):
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id)
    emu.advance(59)
    assert exchange(emu.base_url, code).status_code == 200


def test_a_different_redirect_uri_at_exchange_is_oau_109(emu, app, ext):
    emu.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT_URI, "http://b.test/cb"])
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id)
    response = exchange(emu.base_url, code, redirect_uri="http://b.test/cb")
    assert response.status_code == 400
    assert error_code(response) == "OAU-109"


def test_a_code_issued_to_another_client_is_oau_110(emu, app, ext):
    emu.register_app("other-client", "other-secret", redirect_uris=[REDIRECT_URI])
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    response = token_request(emu.base_url, form, client=("other-client", "other-secret"))
    assert response.status_code == 400
    assert error_code(response) == "OAU-110"


def test_unsupported_grant_type_is_rejected(emu, app, ext):
    response = token_request(emu.base_url, {"grant_type": "password", "username": "x"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_a_repeated_form_field_is_oau_111(emu, app, ext):
    response = requests.post(
        f"{emu.base_url}/restapi/oauth/token",
        data=[("grant_type", "refresh_token"), ("grant_type", "refresh_token")],
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert response.status_code == 400
    assert error_code(response) == "OAU-111"


def test_access_token_ttl_is_honoured_within_its_bounds(emu, app, ext):
    assert login(emu, ext, access_token_ttl="600")["expires_in"] == 600
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id)
    response = exchange(emu.base_url, code, access_token_ttl="599")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_refresh_token_ttl_is_honoured_and_clamped_to_the_default(emu, app, ext):
    assert login(emu, ext, refresh_token_ttl="86400")["refresh_token_expires_in"] == 86400
    assert login(emu, ext, refresh_token_ttl="2592000")["refresh_token_expires_in"] == 604800


# -- PKCE ------------------------------------------------------------------------------------


def test_pkce_s256_with_the_right_verifier_is_accepted(emu, app, ext):
    verifier, challenge = pkce_pair()
    query = browser_login(
        emu.base_url, ext.id, code_challenge=challenge, code_challenge_method="S256"
    )
    response = exchange(emu.base_url, query["code"], code_verifier=verifier)
    assert response.status_code == 200, response.text


def test_pkce_method_defaults_to_plain_when_omitted(emu, app, ext):
    verifier, challenge = pkce_pair()
    query = browser_login(emu.base_url, ext.id, code_challenge=verifier)
    assert exchange(emu.base_url, query["code"], code_verifier=verifier).status_code == 200

    query = browser_login(emu.base_url, ext.id, code_challenge=verifier)
    hashed = exchange(emu.base_url, query["code"], code_verifier=challenge)
    assert hashed.status_code == 400


def test_pkce_wrong_verifier_is_invalid_grant(emu, app, ext):
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id, code_challenge=challenge)
    response = exchange(emu.base_url, code, code_verifier=other_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_pkce_missing_verifier_is_invalid_grant(emu, app, ext):
    _, challenge = pkce_pair()
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id, code_challenge=challenge)
    response = exchange(emu.base_url, code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_a_failed_verifier_uses_the_code_up(emu, app, ext):
    verifier, challenge = pkce_pair()
    code = emu.authorize_code(CLIENT_ID, REDIRECT_URI, ext.id, code_challenge=challenge)
    assert exchange(emu.base_url, code, code_verifier=pkce_pair()[0]).status_code == 400
    assert exchange(emu.base_url, code, code_verifier=verifier).status_code == 400


# -- refresh rotation ------------------------------------------------------------------------


def test_refresh_returns_a_new_pair_and_the_old_access_token_dies_at_once(emu, app, ext):
    first = login(emu, ext)
    response = refresh(emu.base_url, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["session_id"] == first["session_id"]
    old = call_me(emu, first["access_token"])
    assert old.status_code == 401
    assert error_code(old).startswith("OAU-")
    assert call_me(emu, second["access_token"]).status_code == 200


def test_old_refresh_token_returns_the_same_new_pair_while_the_new_one_is_unused(emu, app, ext):
    first = login(emu, ext)
    second = refresh(emu.base_url, first["refresh_token"]).json()
    emu.advance(3599)
    again = refresh(emu.base_url, first["refresh_token"])
    assert again.status_code == 200
    assert again.json()["access_token"] == second["access_token"]
    assert again.json()["refresh_token"] == second["refresh_token"]
    emu.advance(2)
    late = refresh(emu.base_url, first["refresh_token"])
    assert late.status_code == 400
    assert late.json()["error"] == "invalid_grant"


def test_old_refresh_token_dies_ten_seconds_after_the_new_access_token_is_used(emu, app, ext):
    first = login(emu, ext, access_token_ttl="3600")
    second = refresh(emu.base_url, first["refresh_token"]).json()
    emu.advance(100)
    assert call_me(emu, second["access_token"]).status_code == 200
    emu.advance(9)
    inside = refresh(emu.base_url, first["refresh_token"])
    assert inside.status_code == 200
    assert inside.json()["access_token"] == second["access_token"]
    emu.advance(2)
    outside = refresh(emu.base_url, first["refresh_token"])
    assert outside.status_code == 400
    assert outside.json()["error"] == "invalid_grant"
    assert refresh(emu.base_url, second["refresh_token"]).status_code == 200


def test_an_expired_access_token_is_401_oau_128(emu, app, ext):
    tokens = login(emu, ext)
    emu.advance(3601)
    response = call_me(emu, tokens["access_token"])
    assert response.status_code == 401
    assert error_code(response) == "OAU-128"
    assert refresh(emu.base_url, tokens["refresh_token"]).status_code == 200


def test_an_expired_refresh_token_is_invalid_grant(emu, app, ext):
    tokens = login(emu, ext, refresh_token_ttl="1000")
    emu.advance(1001)
    response = refresh(emu.base_url, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# -- revoke and sessions ---------------------------------------------------------------------


def test_revoking_the_refresh_token_kills_the_whole_session(emu, app, ext):
    tokens = login(emu, ext)
    response = requests.post(
        f"{emu.base_url}/restapi/oauth/revoke",
        data={"token": tokens["refresh_token"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert response.status_code == 200
    assert call_me(emu, tokens["access_token"]).status_code == 401
    assert refresh(emu.base_url, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoke_accepts_the_token_in_the_query(emu, app, ext):
    tokens = login(emu, ext)
    response = requests.post(
        f"{emu.base_url}/restapi/oauth/revoke",
        params={"token": tokens["access_token"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert response.status_code == 200
    assert call_me(emu, tokens["access_token"]).status_code == 401


def test_revoke_requires_client_authentication(emu, app, ext):
    tokens = login(emu, ext)
    response = requests.post(
        f"{emu.base_url}/restapi/oauth/revoke", data={"token": tokens["access_token"]}, timeout=10
    )
    assert response.status_code == 401
    assert call_me(emu, tokens["access_token"]).status_code == 200


def test_a_sixth_session_for_the_same_user_and_app_kills_the_oldest(emu, app, ext):
    emu.update_config(rate_limits_enabled=False)  # six logins exceed the Auth group's 5/min
    sessions = [login(emu, ext) for _ in range(6)]
    assert call_me(emu, sessions[0]["access_token"]).status_code == 401
    for tokens in sessions[1:]:
        assert call_me(emu, tokens["access_token"]).status_code == 200


# -- Bearer on the REST API ------------------------------------------------------------------


def test_a_rest_call_without_a_token_is_401_with_an_oau_code(emu, app, ext):
    response = requests.get(emu.base_url + ME, timeout=10)
    assert response.status_code == 401
    assert error_code(response).startswith("OAU-")


def test_an_unknown_token_is_401_oau_213(emu, app, ext):
    response = call_me(emu, "A" * 64)
    assert response.status_code == 401
    assert error_code(response) == "OAU-213"


def test_a_garbled_token_is_401_oau_149(emu, app, ext):
    response = call_me(emu, "not a token!")
    assert response.status_code == 401
    assert error_code(response) == "OAU-149"


def test_a_basic_header_on_the_rest_api_is_401_oau_151(emu, app, ext):
    response = requests.get(emu.base_url + ME, auth=(CLIENT_ID, CLIENT_SECRET), timeout=10)
    assert response.status_code == 401
    assert error_code(response) == "OAU-151"


def test_an_app_without_the_sms_scope_cannot_send(emu, ext):
    emu.register_app("reader", "secret", redirect_uris=[REDIRECT_URI], scopes=["ReadAccounts"])
    tokens = emu.issue_tokens("reader", ext.id)
    response = requests.post(
        emu.base_url + ME + "/sms",
        json={"from": {"phoneNumber": "+16505550100"}, "to": [{"phoneNumber": "+16505550199"}]},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert response.status_code == 403
    assert error_code(response) == "CMN-401"
