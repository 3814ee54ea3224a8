"""Campaigns through the REST API (messaging/api/campaigns.py): created from a tag or a file,
started, paused, resumed and canceled with the pages' rules and refusals, read with their
pre-flight numbers and progress, reported per recipient as JSON and as the page's CSV; roles,
other teams' ids, Idempotency-Key and bad input. Sending goes through the outbox to the
emulator, whose journal is the judge."""

from __future__ import annotations

import csv
import io
import threading

import pytest
from django.conf import settings
from django.db import connection as db_connection

from messaging.api.views import campaigns as campaign_views
from messaging.campaigns import running
from messaging.contacts import book
from messaging.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    IdempotencyRecord,
    MessageStatus,
    OutboundMessage,
)
from messaging.sending.attempt import attempt
from tests.api_fixtures import FROM, PAT, SAM, ApiClient, problem
from tests.rc_fixtures import journal
from tests.tracking_helpers import fresh_limits  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("fresh_limits")

LEE = "+16505550152"


def sends(emu) -> list:
    return [e for e in journal(emu, "/sms") if e.method == "POST"]


def csv_file(rows, header=("Name", "Phone", "Appointment"), name="list.csv"):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    upload = io.BytesIO(buffer.getvalue().encode())
    upload.name = name
    return upload


@pytest.fixture
def tagged(team):
    """Pat and Sam tagged "north"; Lee untagged."""
    for name, number, tags in (("Pat Doe", PAT, ["north"]), ("Sam Roe", SAM, ["north"])):
        book.save(team, None, fields={"name": name}, numbers=[(number, "")], tag_names=tags)
    book.save(team, None, fields={"name": "Lee"}, numbers=[(LEE, "")], tag_names=[])


TAG_BODY = {"name": "Spring check-up", "from": FROM, "text": "Hi {first_name}!", "tag": "north"}


def create_from_tag(api, **extra):
    response = api.post("/api/v1/campaigns", {**TAG_BODY, **extra})
    assert response.status_code == 201, response.content
    return response.json()


# --- Creating ------------------------------------------------------------------------------------


def test_a_campaign_from_a_tag_merges_each_contact_and_shows_its_preflight(
    emulator, api_link, tagged, sender_api, alice
):
    created = create_from_tag(sender_api)

    assert created["status"] == "draft" and created["from"] == [FROM]
    assert created["source"] == "tag" and created["source_label"] == "north"
    assert created["created_by"] == alice.email
    assert created["preflight"]["total"] == created["preflight"]["to_send"] == 2
    assert created["preflight"]["segments"] == 2 and created["preflight"]["duration"]
    assert created["progress"]["waiting"] == 2 and created["progress"]["eta_seconds"] is None
    campaign = Campaign.objects.get(pk=created["id"])
    texts = sorted(campaign.recipients.values_list("phone_number", "text"))
    assert texts == [(PAT, "Hi Pat!"), (SAM, "Hi Sam!")]
    assert sender_api.get(f"/api/v1/campaigns/{campaign.pk}").json() == created


def test_a_campaign_from_chosen_contacts_and_from_several_numbers(
    emulator, api_link, tagged, sender_api, team
):
    lee = book.contacts(team).get(name="Lee")
    response = sender_api.post(
        "/api/v1/campaigns",
        {"name": "Lee only", "from": [FROM], "text": "Hello {name}", "contact_ids": [lee.pk]},
    )
    assert response.status_code == 201, response.content
    assert response.json()["source"] == "selection"
    [recipient] = CampaignRecipient.objects.filter(campaign_id=response.json()["id"])
    assert (recipient.phone_number, recipient.text) == (LEE, "Hello Lee")


def test_a_campaign_from_a_csv_file_uses_its_columns_as_merge_fields(
    emulator, api_link, sender_api
):
    upload = csv_file([["Pat Doe", "(650) 555-0150", "Monday"], ["Sam", "650 555 0151", "Tue"]])
    response = sender_api.post_form(
        "/api/v1/campaigns",
        {
            "name": "Reminders",
            "from": FROM,
            "text": "Hi {first_name}, see you {appointment}.",
            "missing_policy": "skip",
            "file": upload,
        },
    )

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["source"] == "file" and created["source_label"] == "list.csv"
    assert created["fields"] == ["name", "phone", "appointment"]
    texts = list(
        CampaignRecipient.objects.filter(campaign_id=created["id"])
        .order_by("position")
        .values_list("phone_number", "text")
    )
    assert texts == [(PAT, "Hi Pat, see you Monday."), (SAM, "Hi Sam, see you Tue.")]


def test_a_form_with_chosen_contacts_and_a_photo_makes_an_mms_campaign(
    emulator, api_link, tagged, sender_api, team
):
    from messaging.models import CampaignFile
    from tests import media_samples

    photo = io.BytesIO(media_samples.png(80, 60))
    photo.name = "map.png"
    ids = [str(c.pk) for c in book.contacts(team).filter(name__in=["Pat Doe", "Lee"])]
    response = sender_api.post_form(
        "/api/v1/campaigns",
        {"name": "Map", "from": [FROM], "text": "Here", "contact_ids": ids, "attachments": [photo]},
    )
    assert response.status_code == 201, response.content
    campaign_id = response.json()["id"]
    assert CampaignFile.objects.filter(campaign_id=campaign_id).count() == 1
    assert CampaignRecipient.objects.filter(campaign_id=campaign_id).count() == 2


def test_a_retry_with_the_same_key_and_body_creates_one_campaign(emulator, api_link, sender_api):
    def post():
        upload = csv_file([["Pat", PAT, "Monday"]])
        return sender_api.post_form(
            "/api/v1/campaigns",
            {"name": "Once", "from": FROM, "text": "See you {appointment}", "file": upload},
            headers={"Idempotency-Key": "campaign-42"},
        )

    first, again = post(), post()
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Campaign.objects.count() == 1

    other = sender_api.post(
        "/api/v1/campaigns",
        {**TAG_BODY, "tag": "other"},
        headers={"Idempotency-Key": "campaign-42"},
    )
    assert other.status_code == 422
    assert "different request" in problem(other)["detail"]
    assert Campaign.objects.count() == 1


def test_a_refused_create_frees_its_key_and_leaves_nothing(emulator, api_link, tagged, sender_api):
    headers = {"Idempotency-Key": "k-7"}
    refused = sender_api.post("/api/v1/campaigns", {**TAG_BODY, "tag": "south"}, headers=headers)
    assert refused.status_code == 422
    assert "tag" in problem(refused)["errors"]
    assert not Campaign.objects.exists() and not IdempotencyRecord.objects.exists()
    assert sender_api.post("/api/v1/campaigns", TAG_BODY, headers=headers).status_code == 201


postgres_only = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="concurrent writers need PostgreSQL",
)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_the_same_key_create_one_campaign(
    emulator, api_link, tagged, sender_api
):
    threads, answers = 8, []
    barrier = threading.Barrier(threads)
    lock = threading.Lock()

    def retry():
        client = ApiClient(sender_api.secret)
        try:
            barrier.wait(timeout=10)
            response = client.post(
                "/api/v1/campaigns", TAG_BODY, headers={"Idempotency-Key": "same"}
            )
            with lock:
                answers.append((response.status_code, response.content))
        finally:
            db_connection.close()

    workers = [threading.Thread(target=retry) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    codes = sorted(code for code, _ in answers)
    assert len(codes) == threads
    assert set(codes) <= {201, 409}, answers
    assert len({body for code, body in answers if code == 201}) == 1
    assert Campaign.objects.count() == 1
    assert CampaignRecipient.objects.count() == 2


# --- Running -------------------------------------------------------------------------------------


def test_start_pause_resume_cancel_and_their_refusals(emulator, api_link, tagged, sender_api):
    campaign_id = create_from_tag(sender_api)["id"]
    base = f"/api/v1/campaigns/{campaign_id}"

    refused = sender_api.post(f"{base}/pause")
    assert refused.status_code == 409
    assert problem(refused)["detail"] == (
        "Only a running campaign can be paused; this one is not started."
    )
    assert problem(sender_api.post(f"{base}/resume"))["status"] == 409

    started = sender_api.post(f"{base}/start")
    assert started.status_code == 200, started.content
    assert started.json()["status"] == "running" and started.json()["started_at"]
    again = sender_api.post(f"{base}/start")
    assert again.status_code == 409
    assert problem(again)["detail"] == "This campaign is running."

    # The feeder hands the messages to the outbox; sent for real through the emulator.
    assert running.feed() == 2
    for pk in OutboundMessage.objects.values_list("pk", flat=True):
        assert attempt(pk).what == "sent"
    assert len(sends(emulator)) == 2
    progress = sender_api.get(base).json()["progress"]
    assert (progress["waiting"], progress["sent"]) == (0, 2)

    paused = sender_api.post(f"{base}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    resumed = sender_api.post(f"{base}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"
    canceled = sender_api.post(f"{base}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    for action in ("cancel", "resume", "start", "pause"):
        refused = sender_api.post(f"{base}/{action}")
        assert refused.status_code == 409, action
        assert "canceled" in problem(refused)["detail"]
    assert len(sends(emulator)) == 2


def test_canceling_before_anything_is_sent_sends_nothing(emulator, api_link, tagged, sender_api):
    base = f"/api/v1/campaigns/{create_from_tag(sender_api)['id']}"
    assert sender_api.post(f"{base}/start").status_code == 200
    running.feed()
    assert sender_api.post(f"{base}/cancel").json()["progress"]["canceled"] == 2
    for pk in OutboundMessage.objects.values_list("pk", flat=True):
        attempt(pk)
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {MessageStatus.CANCELED}
    assert sends(emulator) == []


def test_the_list_filters_by_status_and_pages_with_a_cursor(
    emulator, api_link, tagged, sender_api, monkeypatch
):
    ids = [create_from_tag(sender_api, name=f"Campaign {i}")["id"] for i in range(3)]
    sender_api.post(f"/api/v1/campaigns/{ids[0]}/start")
    monkeypatch.setattr(campaign_views, "PAGE_SIZE", 2)

    first = sender_api.get("/api/v1/campaigns").json()
    assert [c["id"] for c in first["results"]] == [ids[2], ids[1]]
    second = sender_api.get("/api/v1/campaigns", {"cursor": first["next"]}).json()
    assert [c["id"] for c in second["results"]] == [ids[0]] and second["next"] is None
    running_only = sender_api.get("/api/v1/campaigns", {"status": "running"}).json()
    assert [(c["id"], c["status"]) for c in running_only["results"]] == [(ids[0], "running")]


# --- The report ----------------------------------------------------------------------------------


def test_the_report_as_json_pages_with_reasons_and_as_csv_is_the_pages_own(
    emulator, api_link, sender_api, alice_client, monkeypatch
):
    rows = [["Pat", PAT, "Mon"], ["Again", PAT, "Tue"], ["Nobody", "12", "Wed"], ["Sam", SAM, ""]]
    response = sender_api.post_form(
        "/api/v1/campaigns",
        {
            "name": "Report me",
            "from": FROM,
            "text": "See you {appointment}",
            "file": csv_file(rows),
        },
    )
    campaign_id = response.json()["id"]
    base = f"/api/v1/campaigns/{campaign_id}"
    sender_api.post(f"{base}/start")
    running.feed()
    for pk in OutboundMessage.objects.values_list("pk", flat=True):
        attempt(pk)
    monkeypatch.setattr(campaign_views, "PAGE_SIZE", 3)

    first = sender_api.get(f"{base}/report").json()
    second = sender_api.get(f"{base}/report", {"cursor": first["next"]}).json()
    assert second["next"] is None
    by_row = {r["row"]: r for r in first["results"] + second["results"]}
    assert sorted(by_row) == [2, 3, 4, 5]
    assert by_row[2]["result"] == "Sent" and by_row[2]["message_id"] and by_row[2]["sent_at"]
    assert by_row[2]["text"] == "See you Mon" and by_row[2]["number"] == PAT
    assert by_row[3]["result"] == "Skipped: duplicate number" and by_row[3]["skip_kind"]
    assert by_row[4]["state"] == "skipped" and "not a valid" in by_row[4]["reason"]
    assert by_row[5]["result"] == "Skipped: missing field"
    assert by_row[5]["reason"] == "No value for {appointment}."

    page_csv = b"".join(alice_client.get(f"/campaigns/{campaign_id}/report.csv").streaming_content)
    for path, params in ((f"{base}/report", {"format": "csv"}), (f"{base}/report.csv", None)):
        answer = sender_api.get(path, params)
        assert answer.status_code == 200
        assert answer["Content-Type"] == "text/csv; charset=utf-8"
        assert answer["Content-Disposition"] == 'attachment; filename="Report_me-report.csv"'
        assert b"".join(answer.streaming_content) == page_csv
    assert b"Skipped: duplicate number" in page_csv
    assert problem(sender_api.get(f"{base}/report", {"cursor": "x"}))["status"] == 400


# --- Roles and other teams -----------------------------------------------------------------------


def test_a_viewers_key_reads_but_cannot_create_or_run(
    emulator, api_link, tagged, sender_api, viewer_api
):
    campaign_id = create_from_tag(sender_api)["id"]
    base = f"/api/v1/campaigns/{campaign_id}"
    for path in ("/api/v1/campaigns", base, f"{base}/report", f"{base}/report.csv"):
        assert viewer_api.get(path).status_code == 200, path

    refused = viewer_api.post("/api/v1/campaigns", TAG_BODY)
    assert refused.status_code == 403
    assert "sender role" in problem(refused)["detail"]
    for action in ("start", "pause", "resume", "cancel"):
        assert problem(viewer_api.post(f"{base}/{action}"))["status"] == 403
    assert Campaign.objects.get().status == CampaignStatus.DRAFT
    assert Campaign.objects.count() == 1


def test_another_teams_campaign_is_a_404_everywhere(
    emulator, api_link, tagged, sender_api, outsider_api
):
    campaign_id = create_from_tag(sender_api)["id"]
    base = f"/api/v1/campaigns/{campaign_id}"
    for path in (base, f"{base}/report", f"{base}/report.csv"):
        assert problem(outsider_api.get(path))["status"] == 404, path
    assert problem(outsider_api.get(f"{base}/report", {"format": "csv"}))["status"] == 404
    for action in ("start", "pause", "resume", "cancel"):
        assert problem(outsider_api.post(f"{base}/{action}"))["status"] == 404
    assert outsider_api.get("/api/v1/campaigns").json()["results"] == []
    assert Campaign.objects.get().status == CampaignStatus.DRAFT


# --- Bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**TAG_BODY, "colour": "red"}, "colour"),
        ({**TAG_BODY, "name": "  "}, "name"),
        ({key: value for key, value in TAG_BODY.items() if key != "tag"}, "recipients"),
        ({**TAG_BODY, "contact_ids": [1]}, "contact_ids"),
        ({**TAG_BODY, "tag": 7}, "tag"),
        ({**TAG_BODY, "from": []}, "from"),
        ({**TAG_BODY, "from": [7]}, "from"),
        ({**TAG_BODY, "missing_policy": "ignore"}, "missing_policy"),
        ({**TAG_BODY, "start_at": "2020-01-01T09:00:00Z"}, "start_at"),
        ({**TAG_BODY, "start_at": "soon"}, "start_at"),
        (
            {**{k: v for k, v in TAG_BODY.items() if k != "tag"}, "contact_ids": ["1"]},
            "contact_ids.0",
        ),
    ],
)
def test_malformed_requests_are_400_problems(emulator, api_link, tagged, sender_api, body, field):
    response = sender_api.post("/api/v1/campaigns", body)
    assert response.status_code == 400, response.content
    assert field in problem(response)["errors"]
    assert not Campaign.objects.exists()


def test_what_the_campaign_rules_refuse_is_a_422_with_the_pages_reasons(
    emulator, api_link, tagged, sender_api
):
    no_numbers = csv_file([["Pat", "Monday"]], header=("Name", "Appointment"))
    response = sender_api.post_form(
        "/api/v1/campaigns", {"name": "X", "from": FROM, "text": "Hi", "file": no_numbers}
    )
    assert response.status_code == 422
    document = problem(response)
    assert "no column of phone numbers" in document["errors"]["file"][0]

    cases = [
        ({**TAG_BODY, "from": "+15550000000"}, "from"),
        ({**TAG_BODY, "text": "Hi {shoe_size}"}, "text"),
        ({**TAG_BODY, "tag": "south"}, "tag"),
        ({**TAG_BODY, "missing_policy": "fallback"}, "missing_policy"),
    ]
    for body, field in cases:
        response = sender_api.post("/api/v1/campaigns", body)
        assert response.status_code == 422, (body, response.content)
        assert field in problem(response)["errors"], body
    assert not Campaign.objects.exists()


def test_bad_list_parameters_are_400(api_link, sender_api):
    for params in ({"status": "sleeping"}, {"cursor": "abc"}, {"cursor": "-1"}):
        assert problem(sender_api.get("/api/v1/campaigns", params))["status"] == 400
    assert problem(sender_api.get("/api/v1/campaigns/99999999"))["status"] == 404


def test_the_lists_queries_do_not_grow_with_its_rows(emulator, api_link, tagged, sender_api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert sender_api.get("/api/v1/campaigns").status_code == 200
        return len(captured)

    create_from_tag(sender_api)
    one = queries()
    for i in range(4):
        create_from_tag(sender_api, name=f"More {i}")
    assert queries() == one
