"""Linking RingCentral accounts over real HTTP against the emulator: the OAuth round trip,
state and PKCE checks, number sync, broken links, 401 handling, permissions and the tasks."""

import base64
import hashlib
import subprocess
import sys
from datetime import timedelta

import pytest
import requests
from django.conf import settings as django_settings
from django.core import mail
from django.utils import timezone

from messaging.core.phones import format_number
from messaging.links import tokens
from messaging.links.tasks import keep_connections_alive
from messaging.links.tokens import client_for
from messaging.models import ConnectionStatus, RingCentralConnection, SenderNumber
from messaging.ringcentral import errors, oauth
from messaging.ringcentral.emulator import Fault
from tests.rc_fixtures import (
    CALLBACK,
    NUMBER_FAX,
    NUMBER_SMS_MMS,
    NUMBER_SMS_ONLY,
    NUMBER_TOLL_FREE,
    callback_path,
    consent,
    expire_access_token,
    journal,
    link_directly,
    link_through_browser,
    query_of,
    reset_journal,
    start_link,
    token_requests,
)

# --- the round trip ---------------------------------------------------------------------------


def test_linking_over_http_stores_the_connection_and_its_sender_numbers(
    alice, alice_client, team, emulator, rc_user
):
    authorize_url = start_link(alice_client)
    params = query_of(authorize_url)
    assert authorize_url.startswith(f"{emulator.base_url}/restapi/oauth/authorize?")
    assert params["response_type"] == "code"
    assert params["client_id"] == django_settings.RINGCENTRAL_CLIENT_ID
    assert params["redirect_uri"] == CALLBACK
    assert params["code_challenge_method"] == "S256"
    pending = alice_client.session["ringcentral_oauth"][params["state"]]
    expected = base64.urlsafe_b64encode(hashlib.sha256(pending["verifier"].encode()).digest())
    assert params["code_challenge"] == expected.rstrip(b"=").decode()
    assert pending["verifier"] not in authorize_url

    location = consent(emulator, authorize_url, extension_id=rc_user.id)
    response = alice_client.get(callback_path(location))

    assert response.status_code == 302
    assert response["Location"] == "/ringcentral/"
    connection = RingCentralConnection.objects.get()
    assert connection.team == team
    assert connection.linked_by == alice
    assert connection.extension_id == str(rc_user.id)
    assert connection.account_id == rc_user.account_id
    assert connection.extension_name == "Rita Frontdesk"
    assert connection.status == ConnectionStatus.LINKED
    assert not connection.shared_with_team
    assert "SMS" in connection.scopes.split()
    assert connection.access_token and connection.refresh_token
    expires_in = connection.access_expires_at - timezone.now()
    assert timedelta(minutes=55) < expires_in <= timedelta(hours=1)
    assert connection.refresh_expires_at - timezone.now() > timedelta(days=6)

    (exchange,) = token_requests(emulator, "authorization_code")
    assert exchange.status == 200
    assert exchange.header("Authorization") == "Basic [redacted]"
    assert exchange.form["redirect_uri"] == [CALLBACK]
    assert "code_verifier" in exchange.form
    assert "client_secret" not in exchange.form
    assert exchange.header("User-Agent").startswith("mmsportal/")

    numbers = {n.phone_number for n in connection.numbers.all()}
    assert numbers == {NUMBER_SMS_MMS, NUMBER_SMS_ONLY, NUMBER_TOLL_FREE, NUMBER_FAX}
    assert (
        "ringcentral_oauth" not in alice_client.session
        or not alice_client.session["ringcentral_oauth"]
    )

    page = alice_client.get("/ringcentral/").content.decode()
    assert "Rita Frontdesk" in page
    assert "RingCentral linked" in page
    assert "Linked by you" in page
    assert format_number(NUMBER_TOLL_FREE) in page and "Toll-free number: text only" in page
    assert "Fax-only number" in page


def test_callback_without_state_is_refused_and_stores_nothing(alice_client, emulator, rc_user):
    location = consent(emulator, start_link(alice_client), extension_id=rc_user.id)
    code = query_of(location)["code"]

    response = alice_client.get("/ringcentral/callback/", {"code": code})

    assert response.status_code == 400
    assert b"no longer valid" in response.content
    assert not RingCentralConnection.objects.exists()
    assert token_requests(emulator) == []


def test_reused_state_is_refused_and_stores_nothing_more(alice_client, emulator, rc_user):
    location = consent(emulator, start_link(alice_client), extension_id=rc_user.id)
    assert alice_client.get(callback_path(location)).status_code == 302
    before = RingCentralConnection.objects.get()

    replay = alice_client.get(callback_path(location))

    assert replay.status_code == 400
    assert RingCentralConnection.objects.get().access_token == before.access_token
    assert len(token_requests(emulator, "authorization_code")) == 1


def test_state_started_by_another_user_is_refused(bob_client, alice_client, emulator, rc_user):
    location = consent(emulator, start_link(bob_client), extension_id=rc_user.id)

    response = alice_client.get(callback_path(location))

    assert response.status_code == 400
    assert not RingCentralConnection.objects.exists()
    assert token_requests(emulator) == []


def test_state_older_than_ten_minutes_is_refused(alice_client, emulator, rc_user):
    location = consent(emulator, start_link(alice_client), extension_id=rc_user.id)
    session = alice_client.session
    pending = session["ringcentral_oauth"]
    for entry in pending.values():
        entry["started"] -= 601
    session["ringcentral_oauth"] = pending
    session.save()

    response = alice_client.get(callback_path(location))

    assert response.status_code == 400
    assert not RingCentralConnection.objects.exists()


def test_wrong_code_verifier_is_refused_by_ringcentral(db, emulator, rc_user):
    _, challenge = oauth.pkce_pair()
    other_verifier, _ = oauth.pkce_pair()
    code = emulator.authorize_code(
        django_settings.RINGCENTRAL_CLIENT_ID, CALLBACK, rc_user.id, code_challenge=challenge
    )

    with pytest.raises(errors.InvalidGrant) as caught:
        oauth.exchange_code(code, CALLBACK, other_verifier)

    assert caught.value.status == 400
    assert caught.value.permanent
    (entry,) = token_requests(emulator)
    assert entry.status == 400


def test_callback_with_a_tampered_verifier_shows_a_failure_and_stores_nothing(
    alice_client, emulator, rc_user
):
    location = consent(emulator, start_link(alice_client), extension_id=rc_user.id)
    session = alice_client.session
    pending = session["ringcentral_oauth"]
    for entry in pending.values():
        entry["verifier"] = oauth.pkce_pair()[0]
    session["ringcentral_oauth"] = pending
    session.save()

    response = alice_client.get(callback_path(location))

    assert response.status_code == 400
    assert b"Linking RingCentral failed" in response.content
    assert not RingCentralConnection.objects.exists()


def test_access_denied_at_ringcentral_shows_a_clear_page_with_try_again(
    alice_client, emulator, rc_user
):
    location = consent(emulator, start_link(alice_client), extension_id=rc_user.id, approve=False)
    assert query_of(location)["error"] == "access_denied"

    response = alice_client.get(callback_path(location))

    assert response.status_code == 200
    page = response.content.decode()
    assert "You chose not to allow access" in page
    assert 'href="/ringcentral/">Try again' in page
    assert not RingCentralConnection.objects.exists()


def test_other_oauth_errors_show_a_clear_page(alice_client, emulator):
    response = alice_client.get(
        "/ringcentral/callback/", {"error": "unauthorized_client", "state": "whatever"}
    )

    assert response.status_code == 400
    assert b"did not complete the sign-in" in response.content
    assert b"unauthorized_client" in response.content


def test_linking_the_same_extension_again_updates_the_one_row(
    alice_client, emulator, rc_user, team
):
    link_through_browser(alice_client, emulator, rc_user)
    first = RingCentralConnection.objects.get()
    RingCentralConnection.objects.filter(pk=first.pk).update(shared_with_team=True)

    response = link_through_browser(alice_client, emulator, rc_user)

    assert response.status_code == 302
    again = RingCentralConnection.objects.get()
    assert again.pk == first.pk
    assert again.refresh_token != first.refresh_token
    assert again.shared_with_team, "the sharing choice survives a re-link"
    assert SenderNumber.objects.filter(connection=again).count() == 4
    # The session the row held before is ended at RingCentral (sessions per user are capped).
    (revoke,) = journal(emulator, "/restapi/oauth/revoke")
    assert revoke.status == 200


def test_connect_page_asks_before_leaving_and_viewers_cannot_link(
    alice_client, victor_client, emulator
):
    page = alice_client.get("/ringcentral/connect/")
    assert page.status_code == 200
    assert b"Continue to RingCentral" in page.content

    assert victor_client.post("/ringcentral/connect/").status_code == 403


def test_public_base_url_decides_the_redirect_uri(alice_client, emulator, settings):
    settings.PUBLIC_BASE_URL = "https://portal.example"

    params = query_of(start_link(alice_client))

    assert params["redirect_uri"] == "https://portal.example/ringcentral/callback/"


# --- sender numbers ----------------------------------------------------------------------------


def test_sync_derives_sms_mms_toll_free_and_fax_flags(alice, team, emulator, rc_user):
    from messaging.links.connections import sync_numbers

    connection = link_directly(emulator, team, alice, rc_user)

    result = sync_numbers(connection)

    assert result.added == 4
    numbers = {n.phone_number: n for n in connection.numbers.all()}
    both = numbers[NUMBER_SMS_MMS]
    assert (both.can_sms, both.can_mms, both.is_toll_free, both.is_fax) == (
        True,
        True,
        False,
        False,
    )
    assert both.active
    assert both.label == "Main line"
    assert both.rc_id
    assert "MmsSender" in both.features
    sms = numbers[NUMBER_SMS_ONLY]
    assert (sms.can_sms, sms.can_mms, sms.active) == (True, False, True)
    toll_free = numbers[NUMBER_TOLL_FREE]
    assert (toll_free.can_sms, toll_free.can_mms, toll_free.is_toll_free) == (True, False, True)
    assert toll_free.payment_type == "TollFree"
    fax = numbers[NUMBER_FAX]
    assert (fax.can_sms, fax.can_mms, fax.is_fax, fax.active) == (False, False, True, False)


def test_a_number_that_loses_its_feature_is_marked_inactive_not_deleted(
    alice_client, alice, team, emulator, rc_user
):
    connection = link_directly(emulator, team, alice, rc_user)
    alice_client.post(f"/ringcentral/{connection.pk}/sync/")
    # At RingCentral an admin turns texting off for one number and removes another.
    rc_user.number(NUMBER_SMS_ONLY).features.remove("SmsSender")
    rc_user.numbers.remove(rc_user.number(NUMBER_SMS_MMS))

    response = alice_client.post(f"/ringcentral/{connection.pk}/sync/", follow=True)

    assert response.status_code == 200
    assert b"2 no longer usable" in response.content
    numbers = {n.phone_number: n for n in connection.numbers.all()}
    assert len(numbers) == 4
    assert not numbers[NUMBER_SMS_ONLY].active and not numbers[NUMBER_SMS_ONLY].can_sms
    assert not numbers[NUMBER_SMS_MMS].active
    assert numbers[NUMBER_TOLL_FREE].active
    page = alice_client.get("/ringcentral/").content.decode()
    assert "Texting is not enabled for this number at RingCentral." in page
    assert "No longer assigned to this RingCentral user." in page


def test_sync_follows_ringcentral_paging(alice, team, emulator):
    many = [
        {"phone_number": f"+1650555{n:04d}", "features": ["SmsSender"]} for n in range(1000, 1230)
    ]
    extension = emulator.add_extension(name="Call Center", numbers=many)
    connection = link_directly(emulator, team, alice, extension)

    numbers = client_for(connection).list_numbers()

    assert len(numbers) == 230
    pages = journal(emulator, "/phone-number")
    assert [e.query.get("page") for e in pages] == [["1"], ["2"], ["3"]]


# --- token lifecycle ---------------------------------------------------------------------------


def test_a_401_causes_one_refresh_and_one_retry(alice, team, emulator, rc_user):
    connection = link_directly(emulator, team, alice, rc_user)
    # RingCentral's clock runs past the access token's life while ours still trusts it.
    emulator.advance(3700)
    reset_journal(emulator)

    extension = client_for(connection).get_extension()

    assert extension.id == str(rc_user.id)
    calls = journal(emulator, "/extension/~")
    assert [e.status for e in calls if e.path.endswith("/extension/~")] == [401, 200]
    assert len(token_requests(emulator, "refresh_token")) == 1
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.LINKED


def test_an_expiring_token_is_refreshed_before_the_request(alice, team, emulator, rc_user):
    connection = link_directly(emulator, team, alice, rc_user)
    RingCentralConnection.objects.filter(pk=connection.pk).update(
        access_expires_at=timezone.now() + timedelta(minutes=4)
    )
    reset_journal(emulator)

    client_for(connection).get_account()

    assert len(token_requests(emulator, "refresh_token")) == 1
    assert [e.status for e in journal(emulator, "/account/~")] == [200]


def test_invalid_grant_breaks_the_link_emails_admins_once_and_shows_a_banner(
    alice, alice_client, dana, team, emulator, rc_user, django_capture_on_commit_callbacks
):
    connection = link_directly(emulator, team, alice, rc_user)
    emulator.advance(8 * 24 * 3600)  # the refresh token lapsed at RingCentral
    expire_access_token(connection)

    for _ in range(2):
        with (
            django_capture_on_commit_callbacks(execute=True),
            pytest.raises(errors.ConnectionBroken),
        ):
            tokens.fresh_access_token(connection.pk)

    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.BROKEN
    assert "Reconnect RingCentral" in connection.last_error
    (refresh,) = token_requests(emulator, "refresh_token")
    assert refresh.status == 400
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["alice@example.com", "dana@example.com"]
    assert "Reconnect RingCentral" in mail.outbox[0].subject
    assert connection.access_token not in mail.outbox[0].body

    dashboard = alice_client.get("/dashboard/").content.decode()
    assert "Reconnect RingCentral" in dashboard
    assert "RingCentral is not linked yet" in dashboard
    assert "Reconnect RingCentral" in alice_client.get("/ringcentral/").content.decode()


def test_relinking_a_broken_connection_repairs_it(
    alice, alice_client, team, emulator, rc_user, django_capture_on_commit_callbacks
):
    connection = link_directly(emulator, team, alice, rc_user)
    emulator.advance(8 * 24 * 3600)
    expire_access_token(connection)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(errors.ConnectionBroken):
        tokens.fresh_access_token(connection.pk)

    link_through_browser(alice_client, emulator, rc_user)

    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.LINKED
    assert connection.last_error == ""
    assert "Reconnect RingCentral" not in alice_client.get("/dashboard/").content.decode()


def test_a_transient_refresh_failure_keeps_the_still_valid_token(alice, team, emulator, rc_user):
    connection = link_directly(emulator, team, alice, rc_user)
    RingCentralConnection.objects.filter(pk=connection.pk).update(
        access_expires_at=timezone.now() + timedelta(minutes=2)
    )
    emulator.inject(Fault(kind="status", status=503, path_contains="/restapi/oauth/token"))

    token = tokens.fresh_access_token(connection.pk)

    connection.refresh_from_db()
    assert token == connection.access_token
    assert connection.status == ConnectionStatus.REFRESH_FAILING
    assert "RingCentral is having trouble" in connection.last_error
    # The next attempt succeeds and heals the link.
    tokens.fresh_access_token(connection.pk)
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.LINKED


def test_keep_connections_alive_refreshes_only_links_about_to_lapse(
    alice, bob, team, emulator, rc_user
):
    idle = link_directly(emulator, team, alice, rc_user)
    other = emulator.add_extension(name="Busy Bee", numbers=[])
    busy = link_directly(emulator, team, bob, other)
    RingCentralConnection.objects.filter(pk=idle.pk).update(
        refresh_expires_at=timezone.now() + timedelta(days=1)
    )
    reset_journal(emulator)

    counts = keep_connections_alive()

    assert counts == {"refreshed": 1, "failed": 0}
    assert len(token_requests(emulator, "refresh_token")) == 1
    idle.refresh_from_db()
    busy_after = RingCentralConnection.objects.get(pk=busy.pk)
    assert idle.refresh_expires_at - timezone.now() > timedelta(days=6)
    assert busy_after.refresh_token == busy.refresh_token


# --- permissions ------------------------------------------------------------------------------


def connection_urls(pk):
    return [
        ("post", f"/ringcentral/{pk}/share/"),
        ("post", f"/ringcentral/{pk}/sync/"),
        ("get", f"/ringcentral/{pk}/disconnect/"),
        ("post", f"/ringcentral/{pk}/disconnect/"),
    ]


def test_outsiders_get_404_for_every_connection_url(alice, charlie_client, team, emulator, rc_user):
    connection = link_directly(emulator, team, alice, rc_user)
    RingCentralConnection.objects.filter(pk=connection.pk).update(shared_with_team=True)

    for method, url in connection_urls(connection.pk):
        assert getattr(charlie_client, method)(url, {"shared": "0"}).status_code == 404, url
    assert charlie_client.get("/ringcentral/").status_code == 200
    assert b"Rita Frontdesk" not in charlie_client.get("/ringcentral/").content
    assert RingCentralConnection.objects.get().status == ConnectionStatus.LINKED


def test_a_sender_cannot_act_on_another_members_unshared_connection(
    alice, bob_client, team, emulator, rc_user
):
    connection = link_directly(emulator, team, alice, rc_user)

    for method, url in connection_urls(connection.pk):
        assert getattr(bob_client, method)(url, {"shared": "1"}).status_code == 403, url
    assert b"Rita Frontdesk" not in bob_client.get("/ringcentral/").content
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.LINKED
    assert not connection.shared_with_team


def test_only_the_linking_user_shares_and_a_shared_link_is_visible_to_the_team(
    alice, alice_client, bob_client, team, emulator, rc_user
):
    connection = link_directly(emulator, team, alice, rc_user)

    share = f"/ringcentral/{connection.pk}/share/"
    assert alice_client.post(share, {"shared": "1"}).status_code == 302
    connection.refresh_from_db()
    assert connection.shared_with_team

    assert b"Rita Frontdesk" in bob_client.get("/ringcentral/").content
    assert bob_client.post(f"/ringcentral/{connection.pk}/sync/").status_code == 302
    assert bob_client.post(share, {"shared": "0"}).status_code == 403
    assert bob_client.post(f"/ringcentral/{connection.pk}/disconnect/").status_code == 403
    connection.refresh_from_db()
    assert connection.shared_with_team and connection.status == ConnectionStatus.LINKED


def test_an_admin_can_disconnect_any_connection_of_the_team(
    bob, dana_client, team, emulator, rc_user
):
    connection = link_directly(emulator, team, bob, rc_user)
    connection_pk = connection.pk
    from messaging.links.connections import sync_numbers

    sync_numbers(connection)
    assert b"Rita Frontdesk" in dana_client.get("/ringcentral/").content

    response = dana_client.post(f"/ringcentral/{connection_pk}/disconnect/")

    assert response.status_code == 302
    connection = RingCentralConnection.objects.get(pk=connection_pk)
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert connection.access_token_ciphertext == "" and connection.refresh_token_ciphertext == ""
    assert connection.disconnected_at is not None
    assert connection.numbers.count() == 4
    assert not connection.numbers.filter(active=True).exists()
    (revoke,) = journal(emulator, "/restapi/oauth/revoke")
    assert revoke.status == 200
    with pytest.raises(errors.ConnectionBroken):
        tokens.fresh_access_token(connection_pk)


def test_disconnect_still_happens_when_revoking_at_ringcentral_fails(
    alice, alice_client, team, emulator, rc_user
):
    connection = link_directly(emulator, team, alice, rc_user)
    emulator.inject(Fault(kind="status", status=503, path_contains="/restapi/oauth/revoke"))

    response = alice_client.post(f"/ringcentral/{connection.pk}/disconnect/", follow=True)

    assert response.status_code == 200
    assert b"RingCentral disconnected" in response.content
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert connection.refresh_token_ciphertext == ""


def test_dashboard_card_shows_only_while_the_team_has_no_usable_connection(
    alice, alice_client, team, emulator, rc_user
):
    assert b"RingCentral is not linked yet" in alice_client.get("/dashboard/").content
    assert b'href="/ringcentral/"' in alice_client.get("/dashboard/").content

    link_directly(emulator, team, alice, rc_user)

    assert b"RingCentral is not linked yet" not in alice_client.get("/dashboard/").content


# --- demo mode: the emulator on its own --------------------------------------------------------


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rc_emulator_command_serves_the_demo_world_for_this_portal():
    from messaging.ringcentral.emulator import demo

    # In demo mode the portal's own (demo) credentials are registered; with real credentials
    # configured, the emulator keeps its own and never sees the real ones.
    client_id = (
        django_settings.RINGCENTRAL_CLIENT_ID if django_settings.DEMO_MODE else demo.DEMO_CLIENT_ID
    )
    port = _free_port()
    callback = "http://127.0.0.1:8000/ringcentral/callback/"
    command = ["rc_emulator", "--port", str(port), "--redirect-uri", callback]
    process = subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=django_settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first_line
        page = requests.get(
            f"http://127.0.0.1:{port}/restapi/oauth/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": callback,
            },
            timeout=10,
        )
        assert page.status_code == 200
        assert "Demo Office" in page.text
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_rc_emulator_command_exits_non_zero_when_the_port_is_taken():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "rc_emulator", "--port", str(port)],
            cwd=django_settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
