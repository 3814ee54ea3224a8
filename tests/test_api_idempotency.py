"""Idempotency-Key on the POSTs that create: a retry with the same key and body gets the first
answer and sends nothing again (the emulator's journal is the judge); the same key with another
body is 422; a retry while the first is still at work is 409; concurrent retries create one
message (PostgreSQL, real threads)."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection as db_connection

from messaging.models import IdempotencyRecord, OutboundMessage
from messaging.sending.attempt import attempt
from tests.api_fixtures import FROM, PAT, SAM, ApiClient, problem
from tests.rc_fixtures import journal
from tests.tracking_helpers import fresh_limits  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("fresh_limits")

BODY = {"from": FROM, "to": [PAT], "text": "Your table is ready."}


def sends(emu) -> list:
    return [e for e in journal(emu, "/sms") if e.method == "POST"]


def send_all_queued() -> None:
    for pk in OutboundMessage.objects.order_by("pk").values_list("pk", flat=True):
        attempt(pk)


def test_a_retry_with_the_same_key_replays_the_first_answer(emulator, api_link, sender_api):
    headers = {"Idempotency-Key": "booking-1234"}
    first = sender_api.post("/api/v1/messages", BODY, headers=headers)
    assert first.status_code == 201
    send_all_queued()
    again = sender_api.post("/api/v1/messages", BODY, headers=headers)

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert OutboundMessage.objects.count() == 1
    send_all_queued()
    assert len(sends(emulator)) == 1


def test_the_same_key_with_another_body_is_422(emulator, api_link, sender_api):
    headers = {"Idempotency-Key": "booking-1234"}
    assert sender_api.post("/api/v1/messages", BODY, headers=headers).status_code == 201
    other = sender_api.post("/api/v1/messages", {**BODY, "to": [SAM]}, headers=headers)
    assert other.status_code == 422
    assert "different request" in problem(other)["detail"]
    assert OutboundMessage.objects.count() == 1


def test_a_refused_request_frees_its_key(emulator, api_link, sender_api):
    headers = {"Idempotency-Key": "k-1"}
    refused = sender_api.post("/api/v1/messages", {**BODY, "from": "+15550000000"}, headers=headers)
    assert refused.status_code == 422
    assert sender_api.post("/api/v1/messages", BODY, headers=headers).status_code == 201


def test_a_retry_while_the_first_is_at_work_is_409(emulator, api_link, sender_api, team):
    IdempotencyRecord.objects.create(team=team, key="busy", fingerprint="0" * 64)
    response = sender_api.post("/api/v1/messages", BODY, headers={"Idempotency-Key": "busy"})
    # Another request's fingerprint: refused as a reuse, whatever its state.
    assert response.status_code == 422

    IdempotencyRecord.objects.all().delete()
    first = sender_api.post("/api/v1/messages", BODY, headers={"Idempotency-Key": "busy"})
    assert first.status_code == 201
    IdempotencyRecord.objects.update(state="in_progress")
    response = sender_api.post("/api/v1/messages", BODY, headers={"Idempotency-Key": "busy"})
    assert response.status_code == 409
    assert problem(response)["detail"] == (
        "A request with this key is still being processed; retry."
    )
    assert OutboundMessage.objects.count() == 1


def test_a_key_left_in_progress_by_a_lost_request_is_taken_over(
    emulator, api_link, sender_api, team
):
    from datetime import timedelta

    from django.utils import timezone

    from messaging.api.idempotency import ABANDONED_AFTER

    first = sender_api.post("/api/v1/messages", BODY, headers={"Idempotency-Key": "lost"})
    assert first.status_code == 201
    # As if its process had died before committing: nothing but the row in progress.
    OutboundMessage.objects.all().delete()
    IdempotencyRecord.objects.update(
        state="in_progress", created_at=timezone.now() - ABANDONED_AFTER - timedelta(seconds=1)
    )
    again = sender_api.post("/api/v1/messages", BODY, headers={"Idempotency-Key": "lost"})
    assert again.status_code == 201
    assert OutboundMessage.objects.count() == 1


def test_replies_are_idempotent_too(emulator, api_link, sender_api):
    from messaging.inbox import sync as inbox_sync
    from messaging.models import Conversation

    connection, _ = api_link
    inbox_sync.sync_connection(connection.pk)
    emulator.inbound(PAT, FROM, "Are you open?")
    inbox_sync.sync_connection(connection.pk)
    conversation = Conversation.objects.get(contact_key=PAT)
    path = f"/api/v1/conversations/{conversation.pk}/replies"
    headers = {"Idempotency-Key": "reply-1"}
    first = sender_api.post(path, {"text": "Yes, until 6."}, headers=headers)
    again = sender_api.post(path, {"text": "Yes, until 6."}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert OutboundMessage.objects.count() == 1


def test_a_body_that_is_not_an_object_is_a_400_with_a_key_too(api_link, sender_api):
    response = sender_api.raw(
        "post", "/api/v1/messages", b"0.0", "application/json", headers={"Idempotency-Key": "k"}
    )
    assert response.status_code == 400
    problem(response)
    assert not IdempotencyRecord.objects.exists()


def test_a_bad_key_is_a_400(api_link, sender_api):
    response = sender_api.post("/api/v1/messages", BODY, headers={"Idempotency-Key": "x" * 300})
    assert response.status_code == 400
    assert "Idempotency-Key" in problem(response)["errors"]


def test_multipart_retries_with_another_boundary_are_the_same_request(
    emulator, api_link, sender_api
):
    import io

    from tests import media_samples

    data = media_samples.png(40, 30)
    answers = []
    for _ in range(2):
        photo = io.BytesIO(data)
        photo.name = "p.png"
        answers.append(
            sender_api.post_form(
                "/api/v1/messages",
                {"from": FROM, "to": [PAT], "text": "Photo", "attachments": [photo]},
                headers={"Idempotency-Key": "mms-1"},
            )
        )
    assert [a.status_code for a in answers] == [201, 201]
    assert OutboundMessage.objects.count() == 1


postgres_only = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="concurrent writers need PostgreSQL",
)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_the_same_key_create_and_send_one_message(
    emulator, api_link, sender_api
):
    threads, answers = 8, []
    barrier = threading.Barrier(threads)
    lock = threading.Lock()

    def retry():
        client = ApiClient(sender_api.secret)
        try:
            barrier.wait(timeout=10)
            response = client.post("/api/v1/messages", BODY, headers={"Idempotency-Key": "same"})
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
    created = [body for code, body in answers if code == 201]
    assert len(set(created)) == 1  # every 201 is the same answer
    assert OutboundMessage.objects.count() == 1
    send_all_queued()
    assert len(sends(emulator)) == 1
