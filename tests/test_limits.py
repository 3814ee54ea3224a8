"""messaging.limits: the boundaries RingCentral draws, and messages a user can act on."""

import json
from types import SimpleNamespace

import pytest
from django.utils.html import json_script

from messaging.ringcentral import limits


def files(count, size=1000, content_type="image/jpeg"):
    return [
        SimpleNamespace(name=f"photo-{i}.jpg", size=size, content_type=content_type)
        for i in range(count)
    ]


def codes(violations):
    return [violation.code for violation in violations]


# --- text -----------------------------------------------------------------------------------


def test_emoji_count_as_two_utf16_units():
    assert limits.utf16_units("abc") == 3
    assert limits.utf16_units("😀") == 2
    assert limits.utf16_units("é") == 1  # BMP, even when it is 2 bytes in UTF-8
    assert limits.utf16_units("a😀b👍🏽") == len("a😀b👍🏽".encode("utf-16-le")) // 2


def test_text_of_exactly_1000_units_is_accepted():
    assert limits.check_text("x" * 1000) == []
    assert limits.check_text("😀" * 500) == []


def test_text_of_1001_units_is_refused_with_the_count_and_the_fix():
    ascii_over = limits.check_text("x" * 1001)
    emoji_over = limits.check_text("😀" * 500 + "a")
    assert codes(ascii_over) == codes(emoji_over) == ["text_too_long"]
    message = emoji_over[0].message
    assert "1,001" in message and "1,000" in message
    assert "Shorten it by 1 character." in message
    assert emoji_over[0].field == "text"


def test_text_far_over_says_how_much_to_cut():
    (violation,) = limits.check_text("😀" * 600)
    assert "1,200" in violation.message
    assert "Shorten it by 200 characters." in violation.message


# --- attachments ----------------------------------------------------------------------------


def test_ten_files_are_accepted_and_the_eleventh_is_refused():
    assert limits.check_attachments(files(10)) == []
    (violation,) = limits.check_attachments(files(11))
    assert violation.code == "too_many_attachments"
    assert violation.field == "attachments"
    assert violation.message == "11 files attached; RingCentral accepts at most 10. Remove 1 file."


def test_thirteen_files_ask_to_remove_three():
    (violation,) = limits.check_attachments(files(13))
    assert violation.message.endswith("Remove 3 files.")


def test_combined_size_of_1_500_000_bytes_is_accepted():
    items = files(2, size=750_000)
    assert limits.check_attachments(items) == []


def test_one_byte_over_the_budget_is_refused_in_bytes_not_rounded_megabytes():
    items = files(1, size=750_000) + files(1, size=750_001)
    (violation,) = limits.check_attachments(items)
    assert violation.code == "attachments_too_large"
    # Rounded, both would read "1.5 MB"; the message must show the real difference.
    assert "1,500,001 bytes" in violation.message
    assert "1,500,000 bytes (1.5 MB)" in violation.message
    assert "save at least 1 byte" in violation.message


def test_budget_is_decimal_megabytes_not_mebibytes():
    assert limits.MAX_ATTACHMENTS_BYTES == 1_500_000
    assert limits.check_attachments(files(1, size=1_572_864))  # 1.5 MiB is over


def test_saving_advice_rounds_up_so_following_it_is_enough():
    (violation,) = limits.check_attachments(files(1, size=1_650_011))
    assert "1.65 MB" in violation.message
    assert "save at least 151 kB" in violation.message  # 150,011 bytes, rounded up


def test_unsupported_type_names_the_file_and_what_is_accepted():
    items = [SimpleNamespace(name="report.docx", size=10, content_type="application/msword")]
    (violation,) = limits.check_attachments(items)
    assert violation.code == "unsupported_type"
    assert "“report.docx”" in violation.message
    assert "application/msword" in violation.message
    assert "PDF" in violation.message and "JPG" in violation.message
    assert "Remove it" in violation.message


def test_type_parameters_and_case_do_not_matter():
    items = [SimpleNamespace(name="a.txt", size=3, content_type="Text/Plain; charset=utf-8")]
    assert limits.check_attachments(items) == []


def test_missing_type_is_refused():
    items = [{"name": "blob", "size": 3, "content_type": None}]
    assert codes(limits.check_attachments(items)) == ["unsupported_type"]


def test_empty_file_is_refused():
    (violation,) = limits.check_attachments(files(1, size=0))
    assert violation.code == "empty_attachment"
    assert "“photo-0.jpg” is empty" in violation.message


def test_mappings_work_like_uploaded_files():
    items = [{"name": "x.png", "size": 5, "content_type": "image/png"}] * 11
    assert codes(limits.check_attachments(items)) == ["too_many_attachments"]


def test_every_problem_is_reported_at_once():
    items = files(11, size=200_000) + [
        SimpleNamespace(name="a.exe", size=1, content_type="application/x-msdownload")
    ]
    assert codes(limits.check_attachments(items)) == [
        "unsupported_type",
        "too_many_attachments",
        "attachments_too_large",
    ]


@pytest.mark.parametrize(
    "mime",
    ["image/jpeg", "image/webp", "video/mp4", "audio/amr", "text/vcard", "application/gzip"],
)
def test_documented_types_are_supported(mime):
    assert limits.is_supported(mime)


def test_every_type_has_label_extensions_and_a_known_category():
    for media in limits.SUPPORTED_TYPES:
        assert media.label and media.extensions
        assert all(ext.startswith(".") and ext == ext.lower() for ext in media.extensions)
        assert media.category in limits.CATEGORIES
    assert len({media.mime for media in limits.SUPPORTED_TYPES}) == len(limits.SUPPORTED_TYPES)


# --- recipients, whole message, request -----------------------------------------------------


def test_group_of_ten_is_accepted_and_eleven_is_refused():
    assert limits.check_recipients(10, group=True) == []
    (violation,) = limits.check_recipients(11, group=True)
    assert violation.code == "too_many_recipients"
    assert violation.field == "to"
    assert "11 recipients" in violation.message and "Remove 1 recipient" in violation.message


def test_separate_messages_are_not_capped_by_the_group_limit():
    assert limits.check_recipients(25, group=False) == []


def test_no_recipient_is_refused():
    assert codes(limits.check_recipients(0)) == ["no_recipients"]


def test_message_needs_text_or_a_file():
    assert codes(limits.check_message("  ", [], 1)) == ["empty_message"]
    assert limits.check_message("", files(1), 1) == []
    assert limits.check_message("hi", [], 1) == []


def test_request_body_cap():
    assert limits.check_request_size(limits.MAX_REQUEST_BYTES) == []
    assert codes(limits.check_request_size(limits.MAX_REQUEST_BYTES + 1)) == ["request_too_large"]


def test_limits_exceeded_carries_the_violations():
    violations = limits.check_attachments(files(11))
    error = limits.LimitsExceeded(violations)
    assert error.violations == violations
    assert "Remove 1 file." in str(error)


# --- sizes and JSON -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (999, "999 bytes"),
        (1000, "1 kB"),
        (640_000, "640 kB"),
        (1_000_000, "1 MB"),
        (1_500_000, "1.5 MB"),
        (1_234_567, "1.23 MB"),
        (10_000_000, "10 MB"),
    ],
)
def test_sizes_are_decimal(num_bytes, text):
    assert limits.format_size(num_bytes) == text


def test_rate_limit_defaults_are_ringcentrals():
    defaults = limits.rate_limit_defaults()
    assert defaults["Medium"] == {"limit": 40, "window": 60.0}
    assert defaults["Light"] == {"limit": 50, "window": 60.0}
    assert defaults[limits.NUMBER_GROUP] == {"limit": 50, "window": 60.0}
    assert limits.DEFAULT_RETRY_AFTER_SECONDS == 30


def test_as_json_feeds_json_script_with_the_same_numbers():
    data = limits.as_json()
    html = json_script(data, "mms-limits")
    payload = json.loads(html.split(">", 1)[1].rsplit("</script>", 1)[0])
    assert payload["maxAttachments"] == limits.MAX_ATTACHMENTS
    assert payload["maxAttachmentsBytes"] == 1_500_000
    assert payload["maxAttachmentsBytesLabel"] == "1.5 MB"
    assert payload["maxTextUnits"] == 1000
    assert payload["maxGroupRecipients"] == 10
    mimes = {t["mime"] for c in payload["categories"] for t in c["types"]}
    assert mimes == set(limits.SUPPORTED_MIME_TYPES)
    assert [c["id"] for c in payload["categories"]] == list(limits.CATEGORIES)
    assert "image/jpeg" in payload["accept"] and ".jpg" in payload["accept"]
