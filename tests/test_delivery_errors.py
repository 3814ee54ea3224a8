"""The one table of RingCentral delivery error codes: every documented code is explained, unknown
ones fall back by prefix, failures without a code by status, and no input goes unexplained."""

import pytest

from messaging.outbox.delivery_errors import ERRORS, Kind, explain

# Section h of the RingCentral facts: every asynchronous deliveryErrorCode it lists.
DOCUMENTED = {
    "SMS-RC-403": Kind.ACCOUNT_LIMIT,
    "SMS-RC-410": Kind.INVALID_NUMBER,
    "SMS-UP-410": Kind.INVALID_NUMBER,
    "SMS-CAR-411": Kind.INVALID_NUMBER,
    "SMS-RC-413": Kind.OPTED_OUT,
    "SMS-UP-413": Kind.OPTED_OUT,
    "SMS-CAR-413": Kind.OPTED_OUT,
    "SMS-RC-430": Kind.SPAM_FILTERED,
    "SMS-UP-430": Kind.SPAM_FILTERED,
    "SMS-CAR-430": Kind.SPAM_FILTERED,
    "SMS-UP-414": Kind.NOT_REGISTERED,
    "SMS-CAR-414": Kind.NOT_REGISTERED,
    "SMS-UP-431": Kind.SENDER_FLAGGED,
    "SMS-UP-432": Kind.TOO_LONG,
    "SMS-CAR-432": Kind.TOO_LONG,
    "SMS-CAR-434": Kind.MEDIA_TOO_LARGE,
    "SMS-CAR-435": Kind.SHORTENED_LINK,
    "SMS-CAR-450": Kind.CARRIER_LIMIT,
    "SMS-CAR-451": Kind.CARRIER_LIMIT,
    "SMS-CAR-452": Kind.CARRIER_LIMIT,
    "SMS-CAR-461": Kind.TOLL_FREE_UNVERIFIED,
    "SMS-CAR-104": Kind.NO_RECEIPT,
    "SMS-CAR-199": Kind.NO_RECEIPT,
    "SMS-RC-500": Kind.GENERAL,
    "SMS-UP-500": Kind.GENERAL,
    "SMS-CAR-500": Kind.GENERAL,
}


@pytest.mark.parametrize(("code", "kind"), sorted(DOCUMENTED.items()))
def test_every_documented_code_has_its_own_reason_and_fix(code, kind):
    explanation = explain(code)
    assert explanation.code == code
    assert explanation.kind == kind
    assert explanation.reason.endswith(".") and explanation.fix.endswith(".")
    assert "SMS-" not in explanation.reason  # words for people, not codes


def test_the_table_lists_exactly_the_documented_codes_once():
    listed = [code for codes, *_ in ERRORS for code in codes]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(DOCUMENTED)


def test_the_reasons_say_what_happened_in_plain_words():
    assert "opted out" in explain("SMS-RC-413").reason
    assert "STOP" in explain("SMS-CAR-413").reason
    assert "START" in explain("SMS-UP-413").fix
    assert "spam" in explain("SMS-RC-430").reason
    assert "10DLC" in explain("SMS-UP-414").reason and "TCR" in explain("SMS-CAR-414").reason
    assert "landline" in explain("SMS-CAR-411").reason
    assert "T-Mobile" in explain("SMS-CAR-450").reason
    assert "too large" in explain("SMS-CAR-434").reason
    assert "toll-free" in explain("SMS-CAR-461").reason
    assert "not reported" in explain("SMS-CAR-104").reason


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("SMS-CAR-999", "carrier did not deliver"),
        ("SMS-UP-123", "gateway"),
        ("SMS-RC-777", "RingCentral could not send"),
    ],
)
def test_an_unknown_code_is_explained_by_where_it_failed(code, words):
    explanation = explain(code)
    assert explanation.code == code and explanation.kind == Kind.GENERAL
    assert words in explanation.reason
    assert "again" in explanation.fix


def test_codes_are_matched_whatever_their_case_and_spacing():
    assert explain(" sms-rc-413 ").kind == Kind.OPTED_OUT


@pytest.mark.parametrize(
    ("status", "words"),
    [("DeliveryFailed", "carrier reported"), ("SendingFailed", "RingCentral could not send")],
)
def test_a_failure_without_a_code_is_explained_by_its_status(status, words):
    explanation = explain("", status)
    assert explanation.code == ""
    assert words in explanation.reason


def test_nothing_goes_unexplained():
    for code in (None, "", "garbage", "MSG-123"):
        explanation = explain(code)
        assert explanation.reason and explanation.fix
