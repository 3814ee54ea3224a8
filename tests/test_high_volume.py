"""High Volume SMS from the campaign side, against the emulator over a real socket: batches
within RingCentral's limits through the shared limiter, rejected recipients, results read once
the emulator has worked the batch through, opt-outs refused, the demo's High Volume number."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from messaging.campaigns import high_volume
from messaging.consent import ledger
from messaging.links import connections
from messaging.models import ConsentSource, ConsentState, SenderNumber
from messaging.outbox import delivery_errors
from messaging.ringcentral import a2p, limits
from messaging.ringcentral.client import RingCentralClient
from messaging.ringcentral.emulator import demo
from messaging.sending import ratelimit
from tests.rc_fixtures import CALLBACK, NUMBERS, journal, link_directly
from tests.tracking_helpers import fresh_limits  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_limits")]

HV = "+16505550135"
LANDLINE = "+16505550162"
STOPPED_AT_RINGCENTRAL = "+16505550163"


def recipients(count: int, start: int = 0) -> list[str]:
    return [f"+1650556{i:04d}" for i in range(start, start + count)]


@pytest.fixture
def hv_user(emulator):
    numbers = [
        *(dict(n) for n in NUMBERS),
        {"phone_number": HV, "features": ["A2PSmsSender", "CallerId"], "label": "High Volume"},
    ]
    return emulator.add_extension(name="Rita Frontdesk", email="rita@acme.example", numbers=numbers)


@pytest.fixture
def linked(emulator, team, alice, hv_user):
    connection = link_directly(emulator, team, alice, hv_user)
    connections.sync_numbers(connection)
    return connection


def key(connection) -> ratelimit.LimitKey:
    return ratelimit.key_for(connection, limits.A2P_GROUP)


def batch_posts(emulator):
    return [e for e in journal(emulator, "/a2p-sms/batches") if e.method == "POST"]


def test_2500_recipients_are_split_sent_and_their_results_read(emulator, linked):
    emulator.update_config(a2p_max_messages=1000)  # RingCentral's limit, made small
    emulator.set_recipient_behaviour(LANDLINE, outcome="delivery_failed", error_code="SMS-CAR-411")
    emulator.set_consent(HV, STOPPED_AT_RINGCENTRAL, "OptOut")
    to = [*recipients(2498), LANDLINE, STOPPED_AT_RINGCENTRAL]
    items = [
        (f"r{i}", number, "Your appointment is tomorrow at 10.") for i, number in enumerate(to)
    ]

    result = high_volume.send_batches(linked, HV, items, max_per_batch=1000)

    assert result.error is None and result.unsent == [] and result.rejected == []
    assert result.requests == 3 and len(result.batches) == 3
    posts = batch_posts(emulator)
    assert [len(p.json["messages"]) for p in posts] == [1000, 1000, 500]
    # The shared text goes once per request, not once per recipient.
    assert all(p.json["text"] for p in posts)
    assert not any("text" in m for p in posts for m in p.json["messages"])
    assert {k for b in result.batches for k in b.recipients.values()} == {
        f"r{i}" for i in range(2500)
    }

    emulator.advance(10)  # every message has left and got its report
    reports = [high_volume.read_results(linked, b.batch_id, b.recipients) for b in result.batches]

    assert all(r.done and r.batch.status == "Completed" for r in reports)
    results = {r.to: r for report in reports for r in report.results}
    assert len(results) == 2500
    assert results[to[0]].status == "Delivered" and results[to[0]].recipient_key == "r0"
    landline = results[LANDLINE]
    assert (landline.status, landline.error_code) == ("DeliveryFailed", "SMS-CAR-411")
    assert landline.reason == delivery_errors.explain("SMS-CAR-411").reason
    stopped = results[STOPPED_AT_RINGCENTRAL]
    assert (stopped.status, stopped.error_code) == ("SendingFailed", "SMS-RC-413")
    assert stopped.kind == delivery_errors.Kind.OPTED_OUT
    assert stopped.recipient_key == "r2499"
    # One batch read and one page of up to 1,000 per batch, each granted by the limiter.
    assert [r.requests for r in reports] == [2, 2, 2]
    assert ratelimit.get_limiter().usage(key(linked)) == 3 + 6


def test_results_of_a_large_batch_are_read_page_by_page(emulator, linked):
    to = recipients(2100)
    result = high_volume.send_batches(linked, HV, [(f"k{n}", n, "Hi") for n in to])
    (batch,) = result.batches
    emulator.advance(10)

    report = high_volume.read_results(linked, batch.batch_id, batch.recipients)

    assert report.requests == 1 + 3  # the batch, then pages of 1,000, 1,000 and 100
    pages = [e for e in journal(emulator, "/a2p-sms/messages")]
    assert [e.query.get("pageToken") is None for e in pages] == [True, False, False]
    assert sorted(r.to for r in report.results) == sorted(to)
    assert all(r.recipient_key == f"k{r.to}" and r.status == "Delivered" for r in report.results)


def test_an_unknown_batch_is_a_typed_error(emulator, linked):
    from messaging.ringcentral import errors

    with pytest.raises(errors.NotFound):
        high_volume.read_results(linked, "no-such-batch")


def test_rejected_recipients_are_reported_with_their_keys_and_reasons(emulator, linked):
    items = [
        ("ann", "+16505550170", "Hi"),
        ("abroad", "+442079460000", "Hi"),
        ("short", "+4412345", "Hi"),
        ("bob", "+16505550171", "Hi"),
    ]

    result = high_volume.send_batches(linked, HV, items)

    assert [(r.recipient_key, r.to, r.code) for r in result.rejected] == [
        ("abroad", "+442079460000", "SMS-RC-410"),
        ("short", "+4412345", "SMS-RC-410"),
    ]
    invalid = delivery_errors.explain("SMS-RC-410")
    assert all(r.reason == invalid.reason and r.fix == invalid.fix for r in result.rejected)
    (batch,) = result.batches
    assert batch.recipients == {"+16505550170": "ann", "+16505550171": "bob"}
    emulator.advance(10)
    report = high_volume.read_results(linked, batch.batch_id, batch.recipients)
    assert report.batch.size == 2
    assert sorted(r.recipient_key for r in report.results) == ["ann", "bob"]


def test_results_follow_the_batch_while_it_is_worked_through(emulator, linked):
    emulator.update_config(a2p_messages_per_second=100.0)
    start = emulator.now()
    emulator.clock = lambda: start
    result = high_volume.send_batches(linked, HV, [(n, n, "Hi") for n in recipients(300)])
    (batch,) = result.batches

    early = high_volume.read_results(linked, batch.batch_id, batch.recipients)
    assert not early.done and early.batch.status == "Processing"
    assert {r.status for r in early.results} == {"Queued"}

    emulator.advance(2.5)
    halfway = high_volume.read_results(linked, batch.batch_id, batch.recipients)
    assert not halfway.done and 0 < halfway.batch.processed < 300

    emulator.advance(10)
    assert high_volume.read_results(linked, batch.batch_id, batch.recipients).done


def test_an_opted_out_recipient_is_refused_and_nothing_is_sent(emulator, linked, team):
    ledger.record(
        team,
        "+16505550172",
        ConsentState.OPTED_OUT,
        ConsentSource.KEYWORD,
        account_id=linked.account_id,
        from_number=HV,
    )
    items = [("a", "+16505550171", "Hi"), ("b", "+16505550172", "Hi")]

    with pytest.raises(high_volume.OptedOutRecipients) as refused:
        high_volume.send_batches(linked, HV, items)

    assert refused.value.numbers == ["+16505550172"]
    assert "opted out" in str(refused.value)
    assert batch_posts(emulator) == []


@pytest.mark.parametrize(
    ("items", "words"),
    [
        ([("a", "+16505550171", "")], "empty"),
        ([("a", "+16505550171", "x" * 1001)], "1,000 characters"),
        ([("a", "+16505550171", "Hi"), ("b", "+16505550171", "Hi")], "twice"),
    ],
)
def test_items_that_cannot_be_sent_are_refused_whole(emulator, linked, items, words):
    with pytest.raises(high_volume.HighVolumeError, match=words):
        high_volume.send_batches(linked, HV, items)
    assert batch_posts(emulator) == []


def test_a_sender_without_the_feature_is_refused_by_ringcentral_and_nothing_is_lost(
    emulator, linked
):
    items = [("a", "+16505550171", "Hi")]
    result = high_volume.send_batches(linked, NUMBERS[0]["phone_number"], items)
    assert result.batches == []
    assert result.error is not None and result.error.status == 400
    assert result.error.code == "CMN-101"
    assert [i.recipient_key for i in result.unsent] == ["a"]


def test_a_busy_limiter_hands_the_rest_back(emulator, linked):
    limiter = ratelimit.get_limiter()
    rate = limiter.rate(key(linked))
    for _ in range(rate.limit):
        assert limiter.try_acquire([key(linked)]) == 0.0
    items = [(n, n, "Hi") for n in recipients(3)]

    result = high_volume.send_batches(linked, HV, items, max_wait=0.0)

    assert result.batches == [] and result.retry_after > 0
    assert [i.to for i in result.unsent] == recipients(3)
    assert batch_posts(emulator) == []


def test_a_429_pauses_the_users_light_group(emulator, linked):
    from messaging.ringcentral.emulator import Fault

    emulator.inject(Fault("rate_limit", path_contains="/a2p-sms/batches", retry_after=45))
    result = high_volume.send_batches(linked, HV, [("a", "+16505550171", "Hi")])
    assert result.retry_after == 45 and len(result.unsent) == 1
    assert ratelimit.get_limiter().try_acquire([key(linked)]) > 0


def test_a_bare_client_needs_the_identity_it_acts_for(emulator, linked, team):
    from messaging.links.tokens import client_for

    client = client_for(linked)
    assert isinstance(client, RingCentralClient)
    with pytest.raises(ValueError, match="account_id"):
        high_volume.send_batches(client, HV, [("a", "+16505550171", "Hi")], team_id=team.pk)
    result = high_volume.send_batches(
        client,
        HV,
        [("a", "+16505550171", "Hi")],
        team_id=team.pk,
        account_id=linked.account_id,
        extension_id=linked.extension_id,
    )
    assert len(result.batches) == 1


def test_synced_high_volume_numbers_are_known_by_their_features(emulator, linked, hv_user):
    number = SenderNumber.objects.get(connection=linked, phone_number=HV)
    assert high_volume.is_high_volume_number(number)
    # It sends no single texts, so compose does not offer it.
    assert not number.can_sms and not number.active
    main = SenderNumber.objects.get(connection=linked, phone_number=NUMBERS[0]["phone_number"])
    assert not high_volume.is_high_volume_number(main)

    hv_user.numbers[:] = [n for n in hv_user.numbers if n.phone_number != HV]
    connections.sync_numbers(linked)
    number.refresh_from_db()
    assert not high_volume.is_high_volume_number(number)


def test_the_demo_high_volume_number_has_the_feature(emulator, team, alice):
    world = demo.seed_demo(
        emulator,
        settings.RINGCENTRAL_CLIENT_ID,
        settings.RINGCENTRAL_CLIENT_SECRET,
        redirect_uris=[CALLBACK],
    )
    connection = link_directly(emulator, team, alice, world.office)
    connections.sync_numbers(connection)

    number = SenderNumber.objects.get(
        connection=connection, phone_number=demo.DEMO_NUMBER_HIGH_VOLUME
    )
    assert high_volume.is_high_volume_number(number)
    result = high_volume.send_batches(
        connection, number.phone_number, [("a", "+16505550170", "Hi")]
    )
    assert len(result.batches) == 1 and result.error is None


def test_the_ringcentral_page_says_what_a_high_volume_number_is_for(
    emulator, team, alice, alice_client
):
    world = demo.seed_demo(
        emulator,
        settings.RINGCENTRAL_CLIENT_ID,
        settings.RINGCENTRAL_CLIENT_SECRET,
        redirect_uris=[CALLBACK],
    )
    connections.sync_numbers(link_directly(emulator, team, alice, world.office))
    page = alice_client.get("/ringcentral/").content.decode()
    row = page[page.index("+1 650-555-0105") :].split("</tr>")[0]
    assert "High Volume SMS number" in row
    assert "Texting is not enabled" not in row


# -- planning batches within the limits (no network) -----------------------------------------


def test_plans_respect_the_message_count_limit():
    messages = [a2p.BatchMessage(n, "Hi") for n in recipients(10_001)]
    planned = a2p.plan_batches(HV, messages)
    assert [len(p) for p in planned] == [10_000, 1]


def test_plans_respect_the_body_size_limit_to_the_byte():
    # Quotes are escaped on the wire: each text is 2,000 bytes of JSON.
    messages = [a2p.BatchMessage(n, f'{i}"' + '"' * 998) for i, n in enumerate(recipients(300))]
    limit = 200_000
    planned = a2p.plan_batches(HV, messages, max_bytes=limit)
    assert len(planned) > 1 and sum(len(p) for p in planned) == 300
    sizes = [len(a2p.build_batch(HV, p)) for p in planned]
    assert all(size <= limit for size in sizes)
    # As few requests as the limit allows: each one is full but for its last (a request may
    # send its own first text at the top, a message's worth smaller than planned).
    assert all(size + 2 * 2100 > limit for size in sizes[:-1])


def test_the_common_text_is_sent_once_and_others_per_message():
    body = json.loads(
        a2p.build_batch(
            HV,
            [
                a2p.BatchMessage("+16505550170", "Hi Ann"),
                a2p.BatchMessage("+16505550171", "See you"),
                a2p.BatchMessage("+16505550172", "See you"),
            ],
        )
    )
    assert body == {
        "from": HV,
        "text": "See you",
        "messages": [
            {"to": ["+16505550170"], "text": "Hi Ann"},
            {"to": ["+16505550171"]},
            {"to": ["+16505550172"]},
        ],
    }


def test_each_request_stays_within_the_plan_whatever_its_own_common_text():
    long_text, numbers = "a" * 1000, recipients(80)
    messages = [a2p.BatchMessage(n, long_text) for n in numbers[:12]]
    messages += [a2p.BatchMessage(n, "Hi") for n in numbers[12:62]]
    messages += [a2p.BatchMessage(n, f"Hi {i}") for i, n in enumerate(numbers[62:])]
    for limit in (3_000, 5_000, 12_000):
        planned = a2p.plan_batches(HV, messages, max_bytes=limit)
        assert [m for p in planned for m in p] == messages
        assert all(len(a2p.build_batch(HV, p)) <= limit for p in planned)
