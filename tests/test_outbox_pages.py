"""The team outbox: folders, search, keyset pages, live statuses, a message's page and actions."""

import re
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from messaging.models import (
    Attachment,
    AttemptOutcome,
    ConnectionStatus,
    Membership,
    MessageStatus,
    OutboundMessage,
    RecipientStatus,
    Role,
    SendAttempt,
)
from messaging.outbox import folders
from messaging.outbox import states as outbox
from messaging.outbox.events import record_event
from messaging.outbox.paging import PAGE_SIZE
from tests.factories import make_connection, make_message, make_number, message_in, status_of
from tests.plans import plan_without_seqscan

OUTBOX = "/messages/"


@pytest.fixture
def number(team, alice):
    return make_number(make_connection(team, alice, shared=True))


def listed_ids(response):
    return [row["message"].pk for row in response.context["rows"]]


@pytest.fixture
def one_of_each(number, alice):
    """One message in every status, keyed by status."""
    return {status: message_in(number, alice, status) for status in MessageStatus.values}


# --- The list -------------------------------------------------------------------------------------


def test_every_member_sees_every_team_message_and_who_wrote_it(
    number, alice, bob, bob_client, victor_client
):
    mine = make_message(number, bob, text="From bob")
    hers = make_message(number, alice, text="From alice")
    for client in (bob_client, victor_client):
        response = client.get(OUTBOX)
        assert response.status_code == 200
        assert set(listed_ids(response)) == {mine.pk, hers.pk}
        html = response.content.decode()
        assert "alice@example.com" in html and "bob@example.com" in html


def test_the_outbox_shows_nothing_of_another_team(number, alice, charlie_client):
    make_message(number, alice, text="Acme secret")
    response = charlie_client.get(OUTBOX)
    assert response.status_code == 200
    assert listed_ids(response) == []
    assert "Acme secret" not in response.content.decode()


EXPECTED_FOLDERS = {
    "scheduled": {MessageStatus.SCHEDULED, MessageStatus.HELD},
    "queued": {MessageStatus.QUEUED, MessageStatus.RETRY_WAIT},
    "sending": {MessageStatus.SENDING},
    "sent": {MessageStatus.SENT},
    "delivered": {MessageStatus.DELIVERED},
    "failed": {MessageStatus.FAILED, MessageStatus.SENDING_FAILED, MessageStatus.DELIVERY_FAILED},
    "attention": {MessageStatus.UNKNOWN, MessageStatus.NO_RECEIPT, MessageStatus.HELD},
    "canceled": {MessageStatus.CANCELED},
}


@pytest.mark.parametrize("folder", sorted(EXPECTED_FOLDERS))
def test_each_folder_lists_exactly_its_statuses(folder, one_of_each, alice_client):
    response = alice_client.get(OUTBOX, {"folder": folder})
    expected = {one_of_each[s].pk for s in EXPECTED_FOLDERS[folder]}
    assert set(listed_ids(response)) == expected


def test_all_lists_every_status_and_folders_cover_every_status(one_of_each, alice_client):
    response = alice_client.get(OUTBOX)
    assert set(listed_ids(response)) == {m.pk for m in one_of_each.values()}
    covered = set().union(*(set(f.statuses) for f in folders.FOLDERS))
    assert covered == set(MessageStatus.values)


def test_unfinished_messages_of_a_broken_connection_need_attention(team, alice, alice_client):
    broken = make_connection(team, alice, extension_id="202")
    number = make_number(broken, "+16505550199")
    waiting = message_in(number, alice, MessageStatus.QUEUED)
    accepted = message_in(number, alice, MessageStatus.SENT)
    done = message_in(number, alice, MessageStatus.DELIVERED)
    type(broken).objects.filter(pk=broken.pk).update(status=ConnectionStatus.BROKEN)

    response = alice_client.get(OUTBOX, {"folder": "attention"})
    assert set(listed_ids(response)) == {waiting.pk, accepted.pk}
    assert done.pk not in listed_ids(response)
    counts = {f["key"]: f["count"] for f in response.context["folders"]}
    assert counts["attention"] == 2 and counts["queued"] == 1 and counts["delivered"] == 1
    assert "Link broken" in response.content.decode()


def test_folder_counts_agree_with_the_lists(one_of_each, team, alice, alice_client):
    broken = make_connection(team, alice, extension_id="303")
    stuck = message_in(make_number(broken, "+16505550188"), alice, MessageStatus.RETRY_WAIT)
    type(broken).objects.filter(pk=broken.pk).update(
        status=ConnectionStatus.DISCONNECTED,
        access_token_ciphertext="",
        refresh_token_ciphertext="",
    )
    response = alice_client.get(OUTBOX)
    assert response.context["all_count"] == len(one_of_each) + 1
    for f in response.context["folders"]:
        listed = alice_client.get(OUTBOX, {"folder": f["key"]})
        assert f["count"] == len(listed_ids(listed)), f["key"]
    attention = alice_client.get(OUTBOX, {"folder": "attention"})
    assert stuck.pk in listed_ids(attention)


def test_the_admins_folder_rule_and_the_team_rule_select_the_same_rows(one_of_each, team, alice):
    broken = make_connection(team, alice, extension_id="404")
    message_in(make_number(broken, "+16505550177"), alice, MessageStatus.SENDING)
    type(broken).objects.filter(pk=broken.pk).update(status=ConnectionStatus.BROKEN)
    stalled = folders.stalled_connection_ids(team.pk)
    for folder in folders.FOLDERS:
        joined = set(OutboundMessage.objects.filter(folders.folder_q(folder)).values_list("pk"))
        by_id = set(
            OutboundMessage.objects.filter(folders.folder_q(folder, stalled)).values_list("pk")
        )
        assert joined == by_id, folder.key


def test_folder_counts_stop_at_the_cap_and_say_so(number, alice, team):
    for _ in range(3):
        make_message(number, alice)
    counts = folders.folder_counts(team.messages.all(), [], cap=2)
    assert counts["all"] == 3 and counts["queued"] == 3 and counts["sent"] == 0
    assert folders.count_label(3, cap=2) == "2+"
    assert folders.count_label(2, cap=2) == "2"
    assert folders.count_label(1234, cap=2000) == "1,234"


def test_an_unknown_folder_shows_all(one_of_each, alice_client):
    response = alice_client.get(OUTBOX, {"folder": "nonsense"})
    assert response.status_code == 200
    assert len(listed_ids(response)) == len(one_of_each)


# --- Search ---------------------------------------------------------------------------------------


@pytest.fixture
def searchable(number, alice):
    return {
        "dentist": make_message(number, alice, to=("+16505550111",), text="Dentist tomorrow"),
        "invoice": make_message(
            number, alice, to=("+14155550123", "+14155550124"), text="Your INVOICE is ready"
        ),
        "uk": make_message(number, alice, to=("+447700900123",), text="Hello London"),
    }


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("+16505550111", {"dentist"}),
        ("(650) 555-0111", {"dentist"}),
        ("+1 650 555 0111", {"dentist"}),
        ("0111", {"dentist"}),
        ("555-0124", {"invoice"}),
        ("invoice", {"invoice"}),
        ("  dentist ", {"dentist"}),
        ("+44 7700 900123", {"uk"}),
        ("4155550124", {"invoice"}),
        ("9999", set()),
        ("London", {"uk"}),
    ],
)
def test_search_finds_numbers_however_they_are_typed_and_text(
    typed, expected, searchable, alice_client
):
    response = alice_client.get(OUTBOX, {"q": typed})
    assert set(listed_ids(response)) == {searchable[k].pk for k in expected}


def test_a_number_searches_recipients_and_words_search_the_text(number, alice, alice_client):
    to_number = make_message(number, alice, to=("+16505550111",), text="Hi")
    in_text = make_message(number, alice, to=("+16505550199",), text="Call 0111 today")
    assert listed_ids(alice_client.get(OUTBOX, {"q": "0111"})) == [to_number.pk]
    assert listed_ids(alice_client.get(OUTBOX, {"q": "call 0111"})) == [in_text.pk]


def test_a_national_number_with_a_trunk_prefix_finds_the_e164_number(
    searchable, alice_client, settings
):
    settings.PHONE_DEFAULT_REGION = "GB"
    response = alice_client.get(OUTBOX, {"q": "07700 900123"})
    assert listed_ids(response) == [searchable["uk"].pk]


def test_search_stays_inside_the_folder(number, alice, alice_client):
    failed = message_in(number, alice, MessageStatus.FAILED, text="Appointment moved")
    message_in(number, alice, MessageStatus.DELIVERED, text="Appointment confirmed")
    response = alice_client.get(OUTBOX, {"q": "appointment", "folder": "failed"})
    assert listed_ids(response) == [failed.pk]


def test_search_never_crosses_teams(number, alice, charlie, charlie_client):
    make_message(number, alice, to=("+16505550111",), text="Acme only")
    response = charlie_client.get(OUTBOX, {"q": "+16505550111"})
    assert listed_ids(response) == []


@pytest.mark.django_db
def test_text_search_can_use_the_trigram_index_on_postgresql():
    if db_connection.vendor != "postgresql":
        pytest.skip("the trigram index exists on PostgreSQL only")
    queryset = OutboundMessage.objects.filter(folders.search_q("dentist"))
    # The index's expression must be the one Django's case-insensitive match produces.
    plan = plan_without_seqscan(*queryset.query.sql_with_params())
    assert "outbox_text_trgm" in plan, plan


# --- Keyset pages ---------------------------------------------------------------------------------


def _walk(client, params, direction_key="older_url"):
    seen, url, pages = [], OUTBOX + "?" + "&".join(f"{k}={v}" for k, v in params.items()), 0
    while url:
        response = client.get(url if url.startswith("/") else OUTBOX + url)
        assert response.status_code == 200
        seen.extend(listed_ids(response))
        url = response.context[direction_key]
        pages += 1
        assert pages < 100
    return seen, response


def test_pages_walk_every_message_exactly_once_newest_first(number, alice, alice_client):
    now = timezone.now()
    created = []
    for i in range(PAGE_SIZE * 2 + 7):
        # Groups of three share one instant, so ties are broken by id across page borders.
        created.append(make_message(number, alice, created_at=now - timedelta(seconds=i // 3)))
    expected = [m.pk for m in sorted(created, key=lambda m: (m.created_at, m.pk), reverse=True)]

    seen, last = _walk(alice_client, {})
    assert seen == expected
    assert last.context["older_url"] is None

    # And back again, page by page, from the last page.
    back, url = list(listed_ids(last)), last.context["newer_url"]
    while url:
        response = alice_client.get(OUTBOX + url)
        back = listed_ids(response) + back
        url = response.context["newer_url"]
    assert back == expected


def test_pages_of_a_folder_with_a_search_keep_both(number, alice, alice_client):
    wanted = {
        message_in(number, alice, MessageStatus.FAILED, text=f"Order {i}").pk
        for i in range(PAGE_SIZE + 3)
    }
    message_in(number, alice, MessageStatus.DELIVERED, text="Order delivered")
    message_in(number, alice, MessageStatus.FAILED, text="Something else")
    seen, _ = _walk(alice_client, {"folder": "failed", "q": "order"})
    assert len(seen) == len(set(seen)) and set(seen) == wanted


def test_a_tampered_page_link_shows_the_newest_with_an_explanation(number, alice, alice_client):
    message = make_message(number, alice)
    response = alice_client.get(OUTBOX, {"after": "not-a-cursor"})
    assert response.status_code == 400
    assert listed_ids(response) == [message.pk]
    assert "not valid" in response.content.decode()


def test_the_outbox_runs_the_same_queries_for_3_or_40_rows(number, alice, team, alice_client):
    def measure():
        with CaptureQueriesContext(db_connection) as queries:
            response = alice_client.get(OUTBOX)
        assert response.status_code == 200
        return len(queries), len(listed_ids(response))

    def add(n):
        for i in range(n):
            m = make_message(
                number, alice, to=("+16505550111", f"+1650555{1000 + i:04d}"), text=f"m{i}"
            )
            Attachment.objects.create(
                message=m,
                file=f"attachments/x{i}",
                original_name="a.png",
                content_type="image/png",
                size=10,
                sha256="0" * 64,
            )

    add(3)
    few, rows = measure()
    assert rows == 3
    add(37)
    many, rows = measure()
    assert rows == 40
    assert many == few
    assert few <= 13


# --- Live statuses --------------------------------------------------------------------------------


def test_live_statuses_answer_for_the_teams_messages_only(number, alice, charlie, alice_client):
    mine = message_in(number, alice, MessageStatus.SENT)
    done = message_in(number, alice, MessageStatus.DELIVERED)
    theirs_team = Membership.objects.get(user=charlie).team
    theirs = message_in(
        make_number(make_connection(theirs_team, charlie, extension_id="909"), "+16505550999"),
        charlie,
        MessageStatus.QUEUED,
    )
    response = alice_client.get(
        "/messages/status/", {"ids": f"{mine.pk},{done.pk},{theirs.pk},99999999"}
    )
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    data = response.json()
    by_id = {item["id"]: item for item in data["messages"]}
    assert set(by_id) == {mine.pk, done.pk}
    assert by_id[mine.pk] == {
        "id": mine.pk,
        "status": "sent",
        "label": "Sent",
        "badge": "badge",
        "final": False,
    }
    assert by_id[done.pk]["final"] is True and by_id[done.pk]["badge"] == "badge badge-ok"
    assert data["all_final"] is False


def test_live_statuses_refuse_more_than_100_ids_and_garbage(alice_client):
    ids = ",".join(str(i) for i in range(1, 102))
    assert alice_client.get("/messages/status/", {"ids": ids}).status_code == 400
    assert alice_client.get("/messages/status/", {"ids": "1,two"}).status_code == 400
    empty = alice_client.get("/messages/status/")
    assert empty.status_code == 200 and empty.json()["messages"] == []


def test_live_statuses_need_a_session(client):
    response = client.get("/messages/status/", {"ids": "1"})
    assert response.status_code == 401


def test_the_newest_page_follows_new_messages_and_older_pages_only_their_statuses(
    number, alice, alice_client
):
    done = message_in(number, alice, MessageStatus.DELIVERED)
    html = alice_client.get(OUTBOX).content.decode()
    # The newest page asks for new messages even when every row shown is final.
    assert "js/outbox.js" in html and "data-live-list=" in html
    assert f'data-status-for="{done.pk}" data-final="true"' in html
    assert 'aria-live="polite"' in html
    waiting = make_message(number, alice)
    for _ in range(PAGE_SIZE):
        message_in(number, alice, MessageStatus.DELIVERED)
    older = alice_client.get(OUTBOX).context["older_url"]
    html = alice_client.get(OUTBOX + older).content.decode()
    assert "data-live-list=" not in html
    assert f'data-status-for="{waiting.pk}" data-final="false"' in html


# --- One message ----------------------------------------------------------------------------------


def detail(pk):
    return reverse("message_detail", args=[pk])


def test_a_failed_message_shows_reason_fix_recipients_attempts_and_events(
    number, alice, bob_client
):
    message = message_in(
        number,
        alice,
        MessageStatus.FAILED,
        to=("+16505550111", "+16505550112"),
        error_code="MSG-246",
        error_reason="The sending number is not allowed to send MMS.",
        error_fix="Pick a number with MMS enabled in RingCentral.",
        attempts=2,
    )
    message.recipients.update(status=RecipientStatus.FAILED, error_reason="Refused by provider")
    SendAttempt.objects.create(
        message=message,
        number=1,
        http_status=503,
        rc_error_code="CMN-201",
        outcome=AttemptOutcome.RETRYABLE,
        detail="Service temporarily unavailable",
        started_at=message.created_at + timedelta(seconds=1),
    )
    SendAttempt.objects.create(
        message=message,
        number=2,
        http_status=400,
        rc_error_code="MSG-246",
        outcome=AttemptOutcome.PERMANENT,
        started_at=message.created_at + timedelta(seconds=30),
    )
    record_event(
        message.pk,
        "retry_scheduled",
        "Will try again in 10 seconds.",
        at=message.created_at + timedelta(seconds=2),
    )

    response = bob_client.get(detail(message.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "The sending number is not allowed to send MMS." in html
    assert "Pick a number with MMS enabled in RingCentral." in html
    assert "+1 650-555-0111" in html and "+1 650-555-0112" in html and "Refused by provider" in html
    for text in ("503", "CMN-201", "Failed, will retry", "400", "Failed permanently"):
        assert text in html
    timeline = [entry["what"] for entry in response.context["timeline"]]
    assert timeline[0].startswith("Written by alice@example.com")
    assert timeline[1:] == [
        "Attempt 1 to hand it to RingCentral",
        "Will try again in 10 seconds.",
        "Attempt 2 to hand it to RingCentral",
    ]
    assert response.context["can_retry"] and not response.context["can_cancel"]


def test_accepted_by_ringcentral_is_not_called_delivered(number, alice, alice_client):
    sent = message_in(number, alice, MessageStatus.SENT)
    response = alice_client.get(detail(sent.pk))
    steps = {step["label"]: step["state"] for step in response.context["progress"]}
    assert steps == {
        "Written": "done",
        "Accepted by RingCentral": "done",
        "Delivered to the phone": "waiting",
    }
    assert "That is not delivery yet" in response.content.decode()

    delivered = message_in(number, alice, MessageStatus.DELIVERED)
    response = alice_client.get(detail(delivered.pk))
    steps = {step["label"]: step["state"] for step in response.context["progress"]}
    assert steps["Delivered to the phone"] == "done"


def test_a_delivery_failure_explains_itself_without_a_provider_reason(number, alice, alice_client):
    message = message_in(number, alice, MessageStatus.DELIVERY_FAILED)
    html = alice_client.get(detail(message.pk)).content.decode()
    assert "the carrier could not deliver it" in html
    assert folders.DEFAULT_FIX[MessageStatus.DELIVERY_FAILED] in html


def test_attachments_are_listed_through_the_authorised_url(number, alice, alice_client):
    message = make_message(number, alice)
    attachment = Attachment.objects.create(
        message=message,
        file="attachments/1/abc",
        original_name="photo.jpg",
        content_type="image/jpeg",
        size=2048,
        sha256="0" * 64,
    )
    document = Attachment.objects.create(
        message=message,
        file="attachments/1/def",
        original_name="menu.pdf",
        content_type="application/pdf",
        size=4096,
        sha256="1" * 64,
        position=1,
    )
    Attachment.objects.filter(pk=attachment.pk).update(thumbnail="thumbnails/1/abc")
    html = alice_client.get(detail(message.pk)).content.decode()
    assert "photo.jpg" in html and "menu.pdf" in html
    assert "attachments/1/abc" not in html and "thumbnails/1/abc" not in html  # never a path
    assert reverse("attachment", args=[attachment.pk]) in html
    assert reverse("attachment", args=[document.pk]) in html
    assert reverse("attachment_thumbnail", args=[attachment.pk]) in html
    # A file without a preview gets no broken image.
    assert reverse("attachment_thumbnail", args=[document.pk]) not in html


def test_a_viewer_sees_a_message_but_no_actions(number, alice, victor_client):
    message = make_message(number, alice)
    response = victor_client.get(detail(message.pk))
    assert response.status_code == 200
    assert response.context["can_act"] is False
    html = response.content.decode()
    assert "Cancel sending" not in html and "Send again" not in html


def test_send_again_links_to_the_compose_page_with_the_message(number, alice, bob_client):
    message = message_in(number, alice, MessageStatus.DELIVERY_FAILED)
    response = bob_client.get(detail(message.pk))
    try:
        compose = reverse("compose")
    except Exception:
        assert response.context["again_url"] is None
        return
    assert response.context["again_url"] == f"{compose}?again={message.pk}"


def test_a_message_of_another_of_my_teams_opens_and_becomes_current(
    number, alice, charlie, charlie_client
):
    message = make_message(number, alice)
    # charlie joins Acme as a viewer, but his current team is still his own.
    Membership.objects.create(team=number.connection.team, user=charlie, role=Role.VIEWER)
    response = charlie_client.get(detail(message.pk))
    assert response.status_code == 200
    assert charlie_client.session["current_team_id"] == number.connection.team_id


def test_an_outsider_gets_404_for_every_message_url(number, alice, charlie_client):
    message = message_in(number, alice, MessageStatus.FAILED)
    assert charlie_client.get(detail(message.pk)).status_code == 404
    for action in ("cancel", "retry"):
        url = reverse(f"message_{action}", args=[message.pk])
        assert charlie_client.post(url).status_code == 404
    assert charlie_client.get(detail(99999999)).status_code == 404
    assert status_of(message) == MessageStatus.FAILED


def test_an_outsider_with_only_a_viewer_role_elsewhere_still_gets_404(
    number, alice, charlie, charlie_client
):
    Membership.objects.filter(user=charlie).update(role=Role.VIEWER)
    message = make_message(number, alice)
    url = reverse("message_cancel", args=[message.pk])
    assert charlie_client.post(url).status_code == 404


# --- Actions --------------------------------------------------------------------------------------

ALLOWED = ["alice_client", "dana_client", "bob_client"]


@pytest.mark.parametrize("who", ALLOWED)
def test_owners_admins_and_senders_can_cancel_a_queued_message(who, request, number, alice):
    client = request.getfixturevalue(who)
    message = make_message(number, alice)
    response = client.post(reverse("message_cancel", args=[message.pk]), follow=True)
    assert status_of(message) == MessageStatus.CANCELED
    assert "Canceled" in response.content.decode()
    assert set(message.recipients.values_list("status", flat=True)) == {RecipientStatus.CANCELED}


@pytest.mark.parametrize("who", ALLOWED)
def test_owners_admins_and_senders_can_retry_a_failed_message(
    who, request, number, alice, django_capture_on_commit_callbacks
):
    client = request.getfixturevalue(who)
    message = message_in(number, alice, MessageStatus.FAILED, error_reason="Bad")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("message_retry", args=[message.pk]), follow=True)
    assert status_of(message) == MessageStatus.QUEUED
    assert len(callbacks) == 1  # handed to a worker once the request commits
    assert "Queued again" in response.content.decode()


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_a_viewer_gets_403_on_actions_and_nothing_changes(action, number, alice, victor_client):
    status = MessageStatus.QUEUED if action == "cancel" else MessageStatus.FAILED
    message = message_in(number, alice, status)
    response = victor_client.post(reverse(f"message_{action}", args=[message.pk]))
    assert response.status_code == 403
    assert status_of(message) == status


def test_cancel_after_a_worker_claimed_it_is_refused_with_a_clear_message(
    number, alice, bob_client
):
    message = make_message(number, alice)
    assert outbox.claim(message.pk)
    response = bob_client.post(reverse("message_cancel", args=[message.pk]), follow=True)
    assert status_of(message) == MessageStatus.SENDING
    assert "Too late to cancel" in response.content.decode()


def test_cancel_of_a_delivered_message_says_why_not(number, alice, bob_client):
    message = message_in(number, alice, MessageStatus.DELIVERED)
    response = bob_client.post(reverse("message_cancel", args=[message.pk]), follow=True)
    assert status_of(message) == MessageStatus.DELIVERED
    assert "cannot be canceled: it is delivered" in response.content.decode()


@pytest.mark.parametrize(
    "status",
    [
        MessageStatus.QUEUED,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.DELIVERY_FAILED,
        MessageStatus.SENDING_FAILED,
        MessageStatus.CANCELED,
    ],
)
def test_only_failed_messages_can_be_retried(status, number, alice, bob_client):
    message = message_in(number, alice, status)
    response = bob_client.post(reverse("message_retry", args=[message.pk]), follow=True)
    assert status_of(message) == status
    assert "Only messages RingCentral refused" in response.content.decode()


def test_actions_refuse_get(number, alice, bob_client):
    message = make_message(number, alice)
    assert bob_client.get(reverse("message_cancel", args=[message.pk])).status_code == 405
    assert status_of(message) == MessageStatus.QUEUED


# --- Dashboard ------------------------------------------------------------------------------------


def test_dashboard_shows_folder_counts_and_an_accessible_chart(number, alice, alice_client):
    message_in(number, alice, MessageStatus.DELIVERED)
    message_in(number, alice, MessageStatus.DELIVERED)
    message_in(number, alice, MessageStatus.FAILED)
    old = message_in(number, alice, MessageStatus.DELIVERED)
    long_ago = timezone.now() - timedelta(days=60)
    OutboundMessage.objects.filter(pk=old.pk).update(
        created_at=long_ago, sent_at=long_ago, final_at=long_ago
    )

    response = alice_client.get("/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    counts = {f["key"]: f["count"] for f in response.context["stats_folders"]}
    assert counts["delivered"] == 3 and counts["failed"] == 1
    assert response.context["stats_total"] == 4

    chart = response.context["chart"]
    totals = {s.key: s.total for s in chart["series"]}
    assert totals == {"sent": 2, "delivered": 2, "failed": 1}  # the 60-day-old one is out
    assert len(chart["rows"]) == 30
    assert chart["rows"][-1]["delivered"] == 2
    assert re.search(r'<svg[^>]*role="img"[^>]*aria-labelledby="chart-title chart-desc"', html)
    assert '<title id="chart-title">' in html and '<desc id="chart-desc">' in html
    assert "Show the numbers as a table" in html
    assert "<script" not in html.split('class="card outbox-stats"')[1].split("</section>")[0]


def test_numbers_too_big_for_the_database_are_not_found_not_errors(number, alice, alice_client):
    huge = "99999999999999999999"
    assert alice_client.get(f"/messages/{huge}/").status_code == 404
    assert alice_client.post(f"/messages/{huge}/cancel/").status_code == 404
    mine = make_message(number, alice)
    response = alice_client.get("/messages/status/", {"ids": f"{mine.pk},{huge}"})
    assert [item["id"] for item in response.json()["messages"]] == [mine.pk]
    assert alice_client.get(OUTBOX, {"after": f"{huge}.1"}).status_code == 400
    assert alice_client.get(OUTBOX, {"after": f"1.{huge}"}).status_code == 400
