"""The consent ledger: one record per scope, history of every change, and the check that
decides who may not be texted from a number."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.consent import checks, ledger
from messaging.models import ConsentChange, ConsentRecord, ConsentSource, ConsentState

OUT, IN = ConsentState.OPTED_OUT, ConsentState.OPTED_IN
TEAM_NUMBER, OTHER_TEAM_NUMBER = "+16505550100", "+16505550101"
PAT = "+16505550150"


def test_a_stop_to_one_team_number_blocks_only_that_number(team):
    ledger.record(team, PAT, OUT, ConsentSource.KEYWORD, account_id="9001", from_number=TEAM_NUMBER)

    refused = checks.opted_out(team.pk, [PAT], from_number=TEAM_NUMBER, account_id="9001")
    assert set(refused) == {PAT}
    assert checks.opted_out(team.pk, [PAT], from_number=OTHER_TEAM_NUMBER, account_id="9001") == {}
    assert checks.opted_out(team.pk, [PAT], from_number=TEAM_NUMBER, account_id="9002") == {}


def test_a_team_wide_opt_out_blocks_every_number_of_every_account(team):
    ledger.record(team, PAT, OUT, ConsentSource.MANUAL)

    for number in (TEAM_NUMBER, OTHER_TEAM_NUMBER):
        for account in ("9001", "9002", ""):
            assert PAT in checks.opted_out(team.pk, [PAT], from_number=number, account_id=account)


def test_the_latest_change_wins_and_every_change_is_kept(team, alice):
    start = timezone.now() - timedelta(hours=1)
    ledger.record(
        team, PAT, OUT, ConsentSource.KEYWORD, from_number=TEAM_NUMBER, account_id="9001", at=start
    )
    ledger.record(team, PAT, IN, ConsentSource.MANUAL, by=alice, note="Asked us by phone")

    assert checks.opted_out(team.pk, [PAT], from_number=TEAM_NUMBER, account_id="9001") == {}
    history = ConsentChange.objects.filter(record__team=team, record__contact_number=PAT)
    assert [(change.state, change.source) for change in history] == [
        (IN, ConsentSource.MANUAL),
        (OUT, ConsentSource.KEYWORD),
    ]


def test_recording_the_same_state_again_adds_no_history_and_an_older_change_is_ignored(team):
    now = timezone.now()
    _, changed = ledger.record(team, PAT, OUT, ConsentSource.IMPORT, at=now)
    assert changed
    _, changed = ledger.record(team, PAT, OUT, ConsentSource.MANUAL, at=now + timedelta(1))
    assert not changed
    _, changed = ledger.record(team, PAT, IN, ConsentSource.RINGCENTRAL, at=now - timedelta(1))
    assert not changed

    record = ConsentRecord.objects.get(team=team, contact_number=PAT)
    assert (record.state, record.source) == (OUT, ConsentSource.IMPORT)
    assert record.changes.count() == 1


def test_the_check_for_ten_thousand_recipients_asks_at_most_once_per_thousand(team):
    numbers = [f"+1650555{index:04d}" for index in range(10_000)]
    for number in numbers[::500]:
        ledger.record(team, number, OUT, ConsentSource.IMPORT)

    with CaptureQueriesContext(connection) as queries:
        refused = checks.opted_out(team.pk, numbers, from_number=TEAM_NUMBER, account_id="9001")

    assert set(refused) == set(numbers[::500])
    assert len(queries.captured_queries) <= 10


@pytest.mark.django_db
def test_another_team_s_opt_out_does_not_apply(team, alice):
    from messaging.teams import actions as teams

    other = teams.create_team(alice, "Other office")
    ledger.record(other, PAT, OUT, ConsentSource.MANUAL)

    assert checks.opted_out(team.pk, [PAT], from_number=TEAM_NUMBER) == {}


def test_many_new_records_are_created_with_their_history_and_a_clash_falls_back(team):
    ledger.record(team, PAT, IN, ConsentSource.MANUAL, account_id="9001", from_number="*")
    new = [
        ledger.NewRecord(f"+1650555{i:04d}", OUT, ConsentSource.RINGCENTRAL, account_id="9001")
        for i in range(3)
    ]

    assert ledger.record_new(team, new) == 3
    assert ConsentChange.objects.filter(record__account_id="9001").count() == 4

    # One of these exists already (another writer was faster): the batch goes one by one.
    clash = [ledger.NewRecord(PAT, OUT, ConsentSource.RINGCENTRAL, account_id="9001")]
    assert ledger.record_new(team, clash) == 1
    assert ConsentRecord.objects.get(team=team, contact_number=PAT).state == OUT


def test_the_probe_before_each_send_sees_an_opt_out_in_any_scope_and_nothing_else(team):
    assert not checks.any_opted_out(team.pk, [PAT])
    ledger.record(team, PAT, IN, ConsentSource.MANUAL)
    assert not checks.any_opted_out(team.pk, [PAT, "+16505550199"])
    ledger.record(
        team, "+16505550199", OUT, ConsentSource.KEYWORD, account_id="9", from_number=TEAM_NUMBER
    )
    assert checks.any_opted_out(team.pk, [PAT, "+16505550199"])
    assert not checks.any_opted_out(team.pk, [])
