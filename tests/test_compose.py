"""The compose page, its upload/check endpoints and the attachment views, over HTTP.

"Plain" tests post the form as a browser without JavaScript does (files in the form); "drafts"
tests go the way the page's script does (each file to the upload endpoint first, then the form
with the drafts' ids). Both must give the same answers.
"""

import io
import re
import uuid
from datetime import timedelta
from html import unescape

import phonenumbers
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone
from PIL import Image

from messaging.compose import drafts, media
from messaging.compose import views as compose_views
from messaging.core.phones import format_number
from messaging.models import (
    Attachment,
    ConnectionStatus,
    DraftAttachment,
    OutboundMessage,
    Recipient,
    SenderNumber,
)
from messaging.ringcentral import limits
from tests import media_samples as samples
from tests.factories import make_connection, make_number

# One compose page: its uploads, checks and submission name the same form.
FORM = "?form=5d1c2b8e-6f1a-4c59-9d2e-0b7f1c3a4e51"
URL = "/messages/compose/" + FORM
UPLOAD = "/messages/compose/upload/" + FORM
CHECK = "/messages/compose/check/" + FORM


@pytest.fixture(autouse=True)
def _private_media(tmp_path, settings):
    """Each test stores attachments in its own folder, so nothing leaks between tests."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The personas are created with passwords; hashing them properly costs most of a test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def fax_number(connection, phone_number="+16505550155"):
    # The schema keeps fax numbers inactive and unable to send.
    return SenderNumber.objects.create(
        connection=connection,
        phone_number=phone_number,
        features=[],
        number_type="FaxOnly",
        is_fax=True,
        active=False,
    )


@pytest.fixture
def sent(monkeypatch):
    """Records what the outbox hands to Celery (the boundary after commit), sending nothing."""
    from messaging.sending import tasks

    calls = []

    class Recorder:
        @staticmethod
        def delay(message_id):
            calls.append(message_id)

    monkeypatch.setattr(tasks, "send_message", Recorder, raising=False)
    return calls


@pytest.fixture
def connection(team, bob):
    return make_connection(team, bob)


@pytest.fixture
def number(connection):
    return make_number(connection, "+16505550100")


def fields(number, **overrides):
    data = {
        "sender": str(number.pk),
        "to": "+16505550111",
        "text": "Hello from Acme",
        "mode": "separate",
        "fit_images": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def upload_file(name, data):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def errors(response):
    """Every error message on a rendered compose page, in page order."""
    html = response.content.decode()
    found = re.findall(r'<ul class="field-errors errorlist"[^>]*>(.*?)</ul>', html, re.S)
    return [unescape(m) for block in found for m in re.findall(r"<li>(.*?)</li>", block, re.S)]


def nothing_created():
    return not (
        OutboundMessage.objects.exists()
        or Recipient.objects.exists()
        or Attachment.objects.exists()
    )


def upload(client, name, data):
    return client.post(UPLOAD, {"file": upload_file(name, data)})


def upload_ids(client, files):
    ids = []
    for name, data in files:
        response = upload(client, name, data)
        assert response.status_code == 201, response.content
        ids.append(response.json()["upload"]["id"])
    return ids


# --- Access ---------------------------------------------------------------------------------------


def test_sender_sees_the_form_with_their_numbers_and_the_limits(bob_client, number):
    response = bob_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="to"' in html and 'name="text"' in html and 'name="attachments"' in html
    assert "multiple" in re.search(r'<input type="file"[^>]*>', html).group(0)
    assert "+1 650-555-0100" in html
    assert '<script id="mms-limits" type="application/json">' in html
    assert "0 of 10 files · 0.00 of 1.5 MB" in html
    assert 'for="id_to"' in html and 'for="id_text"' in html and 'for="id_attachments"' in html


def test_viewer_gets_403(victor_client, number):
    assert victor_client.get(URL).status_code == 403
    assert victor_client.post(URL, fields(number)).status_code == 403
    assert victor_client.post(UPLOAD, {"file": upload_file("a.txt", b"hi")}).status_code == 403
    assert nothing_created()


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0.00"), (4_999, "0.00"), (5_000, "0.01"), (125_000, "0.13"), (1_500_001, "1.50")],
)
def test_the_meter_rounds_megabytes_like_the_script(size, shown):
    from messaging.compose.views import megabytes

    assert megabytes(size) == shown


def test_anonymous_visitor_is_sent_to_sign_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert client.post(UPLOAD, {"file": upload_file("a.txt", b"hi")}).status_code == 401


def test_outsider_cannot_send_from_another_teams_number(charlie_client, charlie, number):
    own = make_number(make_connection(charlie.teams.get(), charlie), "+16505550199")
    response = charlie_client.post(URL, fields(number))
    assert response.status_code == 400
    assert "Choose one of your numbers to send from." in errors(response)
    assert "+1 650-555-0100" not in charlie_client.get(URL).content.decode()
    assert own.phone_number and nothing_created()


def test_without_a_usable_connection_the_page_says_what_to_do(bob_client, team):
    response = bob_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No number to send from yet" in html
    assert 'href="/ringcentral/"' in html


def test_an_unshared_connection_of_someone_else_is_not_offered(bob_client, team, alice):
    make_number(make_connection(team, alice, extension_id="201"), "+16505550177")
    html = bob_client.get(URL).content.decode()
    assert "No number to send from yet" in html
    assert "not shared with the team" in html


def test_a_shared_connection_is_offered_to_every_sender(bob_client, team, alice):
    make_number(make_connection(team, alice, shared=True, extension_id="201"), "+16505550177")
    assert "+1 650-555-0177" in bob_client.get(URL).content.decode()


def test_broken_connections_and_inactive_numbers_are_not_offered(bob_client, connection, number):
    SenderNumber.objects.create(connection=connection, phone_number="+16505550188", active=False)
    assert "+1 650-555-0188" not in bob_client.get(URL).content.decode()
    connection.status = ConnectionStatus.BROKEN
    connection.save()
    assert "No number to send from yet" in bob_client.get(URL).content.decode()


def test_toll_free_numbers_are_explained_and_fax_numbers_not_offered(
    bob_client, connection, number
):
    make_number(connection, "+18005550100", mms=False, is_toll_free=True)
    fax_number(connection)
    html = bob_client.get(URL).content.decode()
    assert "+1 800-555-0100 (toll-free: text only, no files)" in html
    assert 'data-mms="0"' in html
    # A number that cannot text at all is not offered (the command line still says why).
    assert "+1 650-555-0155" not in html


def test_toll_free_number_cannot_send_files(bob_client, connection, sent):
    toll_free = make_number(connection, "+18005550100", mms=False, is_toll_free=True)
    response = bob_client.post(
        URL, {**fields(toll_free), "attachments": [upload_file("a.txt", b"hello")]}
    )
    assert response.status_code == 400
    assert (
        "+1 800-555-0100 is toll-free: RingCentral sends no MMS (messages with files) from "
        "toll-free numbers. Choose a number that can send MMS, or remove the files."
    ) in errors(response)
    assert nothing_created()


@pytest.mark.parametrize("value", ["²", "٣", "99999999999999999999999", "1e3", "-1", " 7 "])
def test_odd_sender_values_are_a_field_error(bob_client, number, value):
    response = bob_client.post(URL, fields(number, sender=value))
    assert response.status_code == 400
    assert "Choose one of your numbers to send from." in errors(response)


def test_fax_number_is_refused(bob_client, connection, number):
    fax = fax_number(connection)
    response = bob_client.post(URL, fields(fax))
    assert response.status_code == 400
    assert any("fax number" in e for e in errors(response))


# --- Recipients ---------------------------------------------------------------------------------


def test_recipients_are_normalised_and_duplicates_merged(bob_client, number, sent):
    to = "(650) 555-0111, +1 650 555 0111\n650.555.0112;  \n"
    response = bob_client.post(URL, fields(number, to=to))
    assert response.status_code == 302
    numbers = sorted(Recipient.objects.values_list("phone_number", flat=True))
    assert numbers == ["+16505550111", "+16505550112"]
    follow = bob_client.get(response["Location"])
    assert "1 repeated number merged" in follow.content.decode()


def test_bad_recipients_are_reported_one_by_one_by_what_was_typed(bob_client, number):
    to = "12345\n650-555-0111 ext. 23\n555-1234\nhello\n+1 650 555 0112"
    response = bob_client.post(URL, fields(number, to=to))
    assert response.status_code == 400
    found = errors(response)
    assert (
        "“12345” is a short code or service number; messages from here go to full phone "
        "numbers only." in found
    )
    assert (
        "“650-555-0111 ext. 23” includes an extension (23); text messages reach the phone "
        "number only. Remove the extension." in found
    )
    assert any(e.startswith("“555-1234” is not a valid phone number.") for e in found)
    assert "“hello” is not a phone number." in found
    assert nothing_created()


def test_missing_fields_are_all_reported_at_once(bob_client, number):
    response = bob_client.post(URL, {"sender": "", "to": "", "text": "", "mode": "separate"})
    assert response.status_code == 400
    found = errors(response)
    assert "Choose the number to send from." in found
    assert "Add at least one recipient." in found
    assert "Write a text or attach at least one file." in found


def test_group_message_takes_at_most_the_group_limit(bob_client, number, sent):
    many = ", ".join(f"+1650555{n:04d}" for n in range(100, 100 + limits.MAX_GROUP_RECIPIENTS + 1))
    response = bob_client.post(URL, fields(number, to=many, mode="group"))
    assert response.status_code == 400
    assert limits.check_recipients(limits.MAX_GROUP_RECIPIENTS + 1)[0].message in errors(response)
    response = bob_client.post(URL, fields(number, to=many, mode="separate"))
    assert response.status_code == 302
    assert OutboundMessage.objects.count() == limits.MAX_GROUP_RECIPIENTS + 1


def test_international_recipients_need_the_sender_feature_and_get_no_mms(bob_client, number):
    response = bob_client.post(URL, fields(number, to="+44 20 7946 0958"))
    assert any("not enabled for international texts" in e for e in errors(response))
    response = bob_client.post(
        URL, {**fields(number, to="+44 20 7946 0958"), "attachments": [upload_file("a.txt", b"x")]}
    )
    assert any("sends no MMS (messages with files) abroad" in e for e in errors(response))


# --- Text ---------------------------------------------------------------------------------------

EMOJI = "\U0001f600"


def test_text_of_exactly_1000_units_with_emoji_is_accepted(bob_client, number, sent):
    text = EMOJI * 500
    assert limits.utf16_units(text) == limits.MAX_TEXT_UNITS
    response = bob_client.post(URL, fields(number, text=text))
    assert response.status_code == 302
    assert OutboundMessage.objects.get().text == text


def test_text_of_1001_units_is_refused_with_limits_message(bob_client, number):
    text = EMOJI * 500 + "!"
    response = bob_client.post(URL, fields(number, text=text))
    assert response.status_code == 400
    assert limits.check_text(text)[0].message in errors(response)
    assert nothing_created()


def test_characters_that_cannot_be_stored_are_named_once(bob_client, number):
    response = bob_client.post(URL, fields(number, text="Hello\x00there"))
    assert response.status_code == 400
    assert errors(response) == ["The text contains characters that cannot be sent. Remove them."]


def test_line_breaks_count_once_as_the_browser_counts_them(bob_client, number, sent):
    text = "a\r\n" * 333 + "b"  # 1000 units once CRLF is LF, 1333 if counted raw
    response = bob_client.post(URL, fields(number, text=text))
    assert response.status_code == 302
    assert OutboundMessage.objects.get().text == "a\n" * 333 + "b"


# --- Files: count and size, plain and through drafts -------------------------------------------


def small_files(count):
    return [(f"note{i}.txt", f"note {i}\n".encode()) for i in range(count)]


def test_ten_files_are_accepted_plain(bob_client, number, sent):
    files = [upload_file(n, d) for n, d in small_files(10)]
    response = bob_client.post(URL, {**fields(number), "attachments": files})
    assert response.status_code == 302, errors(response)
    assert Attachment.objects.count() == 10


def test_eleven_files_are_refused_plain_and_kept_as_drafts(bob_client, number):
    files = [upload_file(n, d) for n, d in small_files(11)]
    response = bob_client.post(URL, {**fields(number), "attachments": files})
    assert response.status_code == 400
    message = "11 files attached; RingCentral accepts at most 10. Remove 1 file."
    assert message in errors(response)
    assert nothing_created()
    # The files need not be attached again: they come back as drafts, each with a "Keep" box.
    html = response.content.decode()
    assert html.count('name="uploads"') == 11
    assert DraftAttachment.objects.count() == 11


def test_eleven_files_are_refused_through_drafts_with_the_same_message(bob_client, number):
    ids = upload_ids(bob_client, small_files(11))
    response = bob_client.post(URL, {**fields(number), "uploads": ids})
    assert response.status_code == 400
    assert "11 files attached; RingCentral accepts at most 10. Remove 1 file." in errors(response)
    check = bob_client.post(CHECK, {**fields(number), "uploads": ids}).json()
    assert check["errors"]["attachments"] == [
        "11 files attached; RingCentral accepts at most 10. Remove 1 file."
    ]
    assert nothing_created()


def test_ten_drafts_are_sent(bob_client, number, sent):
    ids = upload_ids(bob_client, small_files(10))
    response = bob_client.post(URL, {**fields(number), "uploads": ids})
    assert response.status_code == 302
    assert Attachment.objects.count() == 10
    assert not DraftAttachment.objects.exists()  # consumed


def budget_files(total):
    """Two non-image files (never fitted) adding up to exactly ``total`` bytes."""
    return [
        ("report.pdf", samples.pdf(1_000_000)),
        ("notes.txt", samples.text_file(total - 1_000_000)),
    ]


def test_exactly_the_byte_budget_is_accepted_plain(bob_client, number, sent):
    files = [upload_file(n, d) for n, d in budget_files(limits.MAX_ATTACHMENTS_BYTES)]
    response = bob_client.post(URL, {**fields(number), "attachments": files})
    assert response.status_code == 302, errors(response)
    assert sum(Attachment.objects.values_list("size", flat=True)) == 1_500_000


def test_one_byte_over_the_budget_is_refused_plain_and_through_drafts(bob_client, number):
    over = budget_files(limits.MAX_ATTACHMENTS_BYTES + 1)
    expected = next(
        v.message
        for v in limits.check_attachments(
            [{"name": n, "size": len(d), "content_type": "text/plain"} for n, d in over]
        )
        if v.code == "attachments_too_large"
    )
    assert "1,500,001 bytes" in expected
    response = bob_client.post(
        URL, {**fields(number), "attachments": [upload_file(n, d) for n, d in over]}
    )
    assert response.status_code == 400
    assert expected in errors(response)
    DraftAttachment.objects.all().delete()
    ids = upload_ids(bob_client, over)
    response = bob_client.post(URL, {**fields(number), "uploads": ids})
    assert expected in errors(response)
    assert nothing_created()


def test_exactly_the_byte_budget_through_drafts_is_accepted(bob_client, number, sent):
    ids = upload_ids(bob_client, budget_files(limits.MAX_ATTACHMENTS_BYTES))
    assert bob_client.post(URL, {**fields(number), "uploads": ids}).status_code == 302


def test_a_pdf_over_the_budget_is_a_clear_error(bob_client, number):
    big = samples.pdf(limits.MAX_ATTACHMENTS_BYTES + 200_000)
    response = bob_client.post(
        URL, {**fields(number), "attachments": [upload_file("big.pdf", big)]}
    )
    assert response.status_code == 400
    assert (
        "The files add up to 1.7 MB; RingCentral accepts at most 1.5 MB per message. Remove or "
        "shrink files to save at least 200 kB." in errors(response)
    )


def test_empty_file_is_refused(bob_client, number):
    response = bob_client.post(URL, {**fields(number), "attachments": [upload_file("e.txt", b"")]})
    assert "“e.txt” is empty (0 bytes). Remove it or attach the file again." in errors(response)


# --- Files: images ------------------------------------------------------------------------------


def test_heic_photo_is_sent_as_jpeg(bob_client, number, sent):
    response = bob_client.post(
        URL,
        {**fields(number), "attachments": [upload_file("IMG_1234.HEIC", samples.heic(120, 80))]},
    )
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    assert (attachment.content_type, attachment.original_name) == ("image/jpeg", "IMG_1234.jpg")
    assert attachment.was_converted and attachment.original_content_type == "image/heic"
    with default_storage.open(attachment.file.name) as handle:
        assert Image.open(handle).format == "JPEG"


def test_heic_upload_returns_a_jpeg_draft_with_a_thumbnail(bob_client, number):
    response = upload(bob_client, "IMG_1234.heic", samples.heic(120, 80, orientation=6))
    assert response.status_code == 201
    info = response.json()["upload"]
    assert info["contentType"] == "image/jpeg" and info["name"] == "IMG_1234.jpg"
    assert info["converted"] and info["fittable"]
    assert "converted from HEIC photo to JPEG image" in info["notes"]
    thumb = bob_client.get(info["thumbnailUrl"])
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(b"".join(thumb.streaming_content))).size == (80, 120)


def test_large_photos_are_fitted_and_the_sizes_reported(bob_client, number, sent):
    photos = [(f"IMG_{i}.jpg", samples.photo(2400, 1800, seed=50 + i)) for i in range(4)]
    assert sum(len(d) for _, d in photos) > 2 * limits.MAX_ATTACHMENTS_BYTES
    response = bob_client.post(
        URL, {**fields(number), "attachments": [upload_file(n, d) for n, d in photos]}
    )
    assert response.status_code == 302, errors(response)
    rows = list(Attachment.objects.order_by("position"))
    assert sum(a.size for a in rows) <= limits.MAX_ATTACHMENTS_BYTES
    for row, (_, original) in zip(rows, photos, strict=True):
        assert row.was_resized and row.original_size == len(original)
        assert row.size >= 0.75 * limits.MAX_ATTACHMENTS_BYTES / 4
    flashes = [str(m) for m in response.wsgi_request._messages]
    assert any(
        f.startswith("Photos reduced to fit RingCentral's 1.5 MB: “IMG_0.jpg”:") for f in flashes
    )


def test_with_fitting_off_oversized_photos_are_a_clear_error(bob_client, number):
    photos = [(f"IMG_{i}.jpg", samples.photo(2400, 1800, seed=50 + i)) for i in range(2)]
    data = {
        **fields(number, fit_images=None),
        "attachments": [upload_file(n, d) for n, d in photos],
    }
    response = bob_client.post(URL, data)
    assert response.status_code == 400
    message = next(e for e in errors(response) if e.startswith("The files add up to"))
    assert message.endswith(
        "Or turn on “Reduce photos to fit” and the photos are made smaller for you."
    )
    assert nothing_created()


def test_orientation_is_applied_and_gps_removed_in_the_stored_file(bob_client, number, sent):
    original = samples.jpeg(80, 40, orientation=6, gps=True)
    response = bob_client.post(
        URL, {**fields(number), "attachments": [upload_file("side.jpg", original)]}
    )
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    with default_storage.open(attachment.file.name) as handle:
        image = Image.open(handle)
        assert image.size == (40, 80) and not image.getexif()
    assert attachment.metadata_removed and (attachment.width, attachment.height) == (40, 80)


# --- Hostile files and names --------------------------------------------------------------------


def test_an_executable_renamed_jpg_is_refused_plain_and_uploaded(bob_client, number):
    program = samples.windows_program()
    response = bob_client.post(
        URL, {**fields(number), "attachments": [upload_file("cat.jpg", program)]}
    )
    assert response.status_code == 400
    assert "“cat.jpg” is a program, and programs cannot be sent." in errors(response)
    response = upload(bob_client, "cat.jpg", program)
    assert response.status_code == 400
    assert response.json() == {
        "ok": False,
        "error": "“cat.jpg” is a program, and programs cannot be sent.",
    }
    assert nothing_created() and not DraftAttachment.objects.exists()


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("..\\..\\windows\\system32\\evil.txt", "evil.txt"),
        ("../../etc/notes.txt", "notes.txt"),
        ("inv\u202eoice\x07.txt", "invoice.txt"),
        ("n" * 500 + ".txt", "n" * (media.MAX_NAME_CHARS - 4) + ".txt"),
    ],
)
def test_hostile_names_are_sanitised(bob_client, number, sent, given, shown):
    response = bob_client.post(
        URL, {**fields(number), "attachments": [upload_file(given, b"hello\n")]}
    )
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.original_name == shown
    assert re.fullmatch(r"attachments/\d+/[0-9a-f]{32}", attachment.file.name)


# --- Request size --------------------------------------------------------------------------------


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def read(self, *args):
        raise AssertionError("the body of an oversized request was read")

    readline = readinto = read


def test_an_oversized_request_is_refused_before_its_body_is_read(bob_client, number, settings):
    too_big = settings.COMPOSE_MAX_REQUEST_BYTES + 1
    response = bob_client.post(
        URL,
        data=b"",
        content_type="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=str(too_big),
        **{"wsgi.input": Unreadable()},
    )
    assert response.status_code == 413
    assert response["Connection"] == "close"
    assert (
        "The upload is 60,000,001 bytes; this portal accepts at most 60,000,000 bytes (60 MB) "
        "at once." in unescape(response.content.decode())
    )
    response = bob_client.post(
        UPLOAD,
        data=b"",
        content_type="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=str(too_big),
        **{"wsgi.input": Unreadable()},
    )
    assert response.status_code == 413
    assert "this portal accepts files of up to 30 MB" in response.json()["error"]
    assert nothing_created()


@override_settings(COMPOSE_MAX_REQUEST_BYTES=50_000)
def test_over_the_request_cap_gives_413_and_a_message(bob_client, number):
    response = bob_client.post(
        URL, {**fields(number), "attachments": [upload_file("a.pdf", samples.pdf(60_000))]}
    )
    assert response.status_code == 413
    assert "this portal accepts at most 50 kB at once" in response.content.decode()
    assert nothing_created()


@override_settings(COMPOSE_MAX_FILE_BYTES=20_000)
def test_a_file_over_the_per_file_cap_is_refused(bob_client, number):
    response = upload(bob_client, "a.pdf", samples.pdf(120_000))
    assert response.status_code == 413
    response = bob_client.post(
        URL, {**fields(number), "attachments": [upload_file("a.pdf", samples.pdf(30_000))]}
    )
    assert "“a.pdf” is 30 kB; this portal accepts files of up to 20 kB." in " ".join(
        errors(response)
    )


def test_too_many_files_for_the_parser_is_a_friendly_400(bob_client, number, settings):
    files = [
        upload_file(f"{i}.txt", b"x") for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)
    ]
    response = bob_client.post(URL, {**fields(number), "attachments": files})
    assert response.status_code == 400
    assert "The form could not be read" in response.content.decode()
    assert nothing_created()


# --- Group or separate, and the outbox ------------------------------------------------------------


def test_group_message_is_one_message_with_all_recipients(
    bob_client, number, sent, django_capture_on_commit_callbacks
):
    to = "+16505550111, +16505550112, +16505550113"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = bob_client.post(
            URL,
            {**fields(number, to=to, mode="group"), "attachments": [upload_file("a.txt", b"hi")]},
        )
        assert response.status_code == 302
        assert sent == []  # nothing handed to a worker before the commit
    message = OutboundMessage.objects.get()
    assert message.is_group and message.status == "queued"
    assert message.from_number == "+16505550100" and message.created_by.email == "bob@example.com"
    assert sorted(message.recipients.values_list("phone_number", flat=True)) == [
        "+16505550111",
        "+16505550112",
        "+16505550113",
    ]
    assert message.attachments.count() == 1
    for callback in callbacks:
        callback()
    assert sent == [message.pk]


def test_separate_messages_share_one_stored_file(
    bob_client, number, sent, django_capture_on_commit_callbacks
):
    to = "+16505550111\n+16505550112\n+16505550113"
    with django_capture_on_commit_callbacks(execute=True):
        response = bob_client.post(
            URL, {**fields(number, to=to), "attachments": [upload_file("a.txt", b"hello")]}
        )
    assert response.status_code == 302
    messages = list(OutboundMessage.objects.order_by("pk"))
    assert len(messages) == 3 and not any(m.is_group for m in messages)
    assert [m.recipients.get().phone_number for m in messages] == [
        "+16505550111",
        "+16505550112",
        "+16505550113",
    ]
    names = set(Attachment.objects.values_list("file", flat=True))
    assert len(names) == 1 and default_storage.exists(names.pop())
    assert sorted(sent) == [m.pk for m in messages]
    follow = bob_client.get(response["Location"])
    assert "Queued: 3 messages, one to each of 3 recipients with 1 file — not sent yet." in (
        follow.content.decode()
    )


def test_one_recipient_redirects_to_the_message_or_the_outbox(bob_client, number, sent):
    response = bob_client.post(URL, fields(number))
    assert response.status_code == 302
    message = OutboundMessage.objects.get()
    assert response["Location"] in (f"/messages/{message.pk}/", "/messages/")
    assert not message.is_group


# --- Drafts --------------------------------------------------------------------------------------


def test_a_form_sent_back_keeps_its_files_and_can_be_sent_after_a_fix(bob_client, number, sent):
    response = bob_client.post(
        URL,
        {
            **fields(number, to="not a number"),
            "attachments": [upload_file("plan.pdf", samples.pdf(900))],
        },
    )
    assert response.status_code == 400
    draft = DraftAttachment.objects.get()
    assert f'value="{draft.key}" checked' in response.content.decode()
    response = bob_client.post(URL, {**fields(number), "uploads": [str(draft.key)]})
    assert response.status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.file.name == draft.file.name and default_storage.exists(draft.file.name)


def test_files_beyond_the_waiting_room_are_named_not_dropped_silently(
    bob_client, number, monkeypatch
):
    monkeypatch.setattr(compose_views, "MAX_LIVE_DRAFTS", 1)
    files = [upload_file(n, d) for n, d in small_files(2)]
    response = bob_client.post(URL, {**fields(number, to="nope"), "attachments": files})
    assert DraftAttachment.objects.count() == 1
    assert any(e.startswith("Not kept: “note1.txt”") for e in errors(response))


def test_unchecking_keep_leaves_the_draft_out(bob_client, number, sent):
    ids = upload_ids(bob_client, small_files(2))
    response = bob_client.post(URL, {**fields(number), "uploads": ids[:1]})
    assert response.status_code == 302
    assert Attachment.objects.get().original_name == "note0.txt"


def test_removing_a_draft_deletes_its_file(bob_client, number, django_capture_on_commit_callbacks):
    info = upload(bob_client, "a.jpg", samples.jpeg()).json()["upload"]
    draft = DraftAttachment.objects.get()
    names = [draft.file.name, draft.thumbnail.name]
    assert all(default_storage.exists(n) for n in names)
    with django_capture_on_commit_callbacks(execute=True):
        assert bob_client.post(info["deleteUrl"]).json() == {"ok": True}
    assert not DraftAttachment.objects.exists()
    assert not any(default_storage.exists(n) for n in names)


def test_drafts_belong_to_their_uploader(bob_client, alice_client, alice, team, number, sent):
    info = upload(bob_client, "a.jpg", samples.jpeg()).json()["upload"]
    assert alice_client.get(info["thumbnailUrl"]).status_code == 404
    assert alice_client.post(info["deleteUrl"]).status_code == 404
    alice_number = make_number(make_connection(team, alice, extension_id="301"), "+16505550122")
    response = alice_client.post(URL, {**fields(alice_number), "uploads": [info["id"]]})
    assert drafts.GONE in errors(response)
    assert nothing_created()


def test_expired_drafts_are_refused_and_purged(
    bob_client, number, django_capture_on_commit_callbacks
):
    info = upload(bob_client, "a.txt", b"hello").json()["upload"]
    draft = DraftAttachment.objects.get()
    DraftAttachment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bob_client.post(URL, {**fields(number), "uploads": [info["id"]]})
    assert drafts.GONE in errors(response)
    with django_capture_on_commit_callbacks(execute=True):
        assert drafts.purge_expired_drafts() == 1
    assert not default_storage.exists(draft.file.name)


def test_the_hourly_cleanup_removes_every_expired_draft_and_keeps_live_ones(
    bob_client, number, django_capture_on_commit_callbacks
):
    from messaging.compose import tasks

    live_id = upload(bob_client, "live.txt", b"live").json()["upload"]["id"]
    for index in range(5):
        upload(bob_client, f"old{index}.txt", b"old")
    old = DraftAttachment.objects.exclude(key=live_id)
    old.update(expires_at=timezone.now() - timedelta(seconds=1))
    old = list(old)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.cleanup(batch=2) == 5
    live = DraftAttachment.objects.get()
    assert str(live.key) == live_id and default_storage.exists(live.file.name)
    assert not any(default_storage.exists(draft.file.name) for draft in old)


def test_unknown_upload_ids_are_reported_not_crashing(bob_client, number):
    response = bob_client.post(URL, {**fields(number), "uploads": ["nonsense", str(uuid.uuid4())]})
    assert response.status_code == 400
    assert drafts.GONE in errors(response)


# --- Check endpoint ------------------------------------------------------------------------------


def test_check_gives_the_same_messages_as_submitting(bob_client, number):
    data = fields(number, to="12345, +16505550111", text=EMOJI * 501)
    check = bob_client.post(CHECK, data).json()
    response = bob_client.post(URL, data)
    assert not check["ok"]
    page = errors(response)
    for messages in check["errors"].values():
        for message in messages:
            assert message in page
    assert check["recipients"] == [{"number": "+16505550111", "display": "+1 650-555-0111"}]


def test_check_accepts_a_valid_form(bob_client, number):
    assert bob_client.post(CHECK, fields(number)).json()["ok"] is True


# --- Attachment views -----------------------------------------------------------------------------


@pytest.fixture
def stored(bob_client, number, sent):
    bob_client.post(
        URL,
        {
            **fields(number),
            "attachments": [
                upload_file("photo.jpg", samples.jpeg(300, 200)),
                upload_file("page.html", b"<!DOCTYPE html><html><script>alert(1)</script></html>"),
            ],
        },
    )
    return list(Attachment.objects.order_by("position"))


def test_team_members_download_attachments_with_safe_headers(victor_client, stored):
    photo, page = stored
    response = victor_client.get(f"/messages/attachments/{photo.pk}/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == 'inline; filename="photo.jpg"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    body = b"".join(response.streaming_content)
    assert len(body) == photo.size
    response = victor_client.get(f"/messages/attachments/{page.pk}/")
    assert response["Content-Type"] == "text/html"
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    thumb = victor_client.get(f"/messages/attachments/{photo.pk}/thumbnail/")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert victor_client.get(f"/messages/attachments/{page.pk}/thumbnail/").status_code == 404


def test_outsiders_get_404_for_attachments(charlie_client, client, stored):
    photo = stored[0]
    assert charlie_client.get(f"/messages/attachments/{photo.pk}/").status_code == 404
    assert charlie_client.get(f"/messages/attachments/{photo.pk}/thumbnail/").status_code == 404
    assert charlie_client.get("/messages/attachments/999999/").status_code == 404
    assert client.get(f"/messages/attachments/{photo.pk}/").status_code == 302  # sign in first


def test_files_are_not_reachable_under_a_public_url(victor_client, stored):
    name = stored[0].file.name
    for path in (f"/{name}", f"/media/{name}", f"/static/{name}"):
        assert victor_client.get(path).status_code == 404


# Send again -----------------------------------------------------------------------------------


def test_send_again_prefills_sender_recipients_text_and_files(alice, team, alice_client):
    from messaging.compose.drafts import store_bytes
    from messaging.compose.submission import Mode
    from messaging.models import Attachment, DraftAttachment
    from tests.factories import make_connection, make_message, make_number

    number = make_number(make_connection(team, alice))
    original = make_message(
        number, alice, to=("+16505550111", "+16505550112"), text="See you at 3 😀"
    )
    stored = store_bytes(team.pk, b"%PDF-1.4 minimal", "application/pdf")
    Attachment.objects.create(
        message=original,
        file=stored,
        original_name="plan.pdf",
        content_type="application/pdf",
        size=16,
        sha256="0" * 64,
    )
    response = alice_client.get(f"/messages/compose/?again={original.pk}")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["sender"] == str(number.pk)
    assert form.initial["text"] == "See you at 3 😀"
    assert "+1 650-555-0111" in form.initial["to"] or "6505550111" in form.initial["to"]
    assert form.initial["mode"] == Mode.GROUP
    draft = DraftAttachment.objects.get(user=alice, team=team)
    assert (draft.file.name, draft.original_name) == (stored, "plan.pdf")
    assert b"plan.pdf" in response.content


def test_send_again_of_another_teams_message_is_404(alice, team, charlie, charlie_client):
    from messaging.models import Team
    from tests.factories import make_connection, make_message, make_number

    original = make_message(make_number(make_connection(team, alice)), alice, text="Acme only")
    charlies_team = Team.objects.get(memberships__user=charlie)
    make_number(make_connection(charlies_team, charlie, extension_id="301"), "+16505550177")
    assert charlie_client.get("/messages/compose/").status_code == 200
    response = charlie_client.get(f"/messages/compose/?again={original.pk}")
    assert response.status_code == 404
    assert b"Acme only" not in response.content


@pytest.mark.parametrize(
    "e164",
    [
        "+16505550100",
        "+12125551234",
        "+18005550199",
        "+447700900123",
        "+33612345678",
        "+61412345678",
    ],
)
def test_numbers_are_shown_as_phonenumbers_lays_them_out(e164):
    parsed = phonenumbers.parse(e164, None)
    expected = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    assert format_number(e164) == expected


def test_a_string_that_is_no_number_is_shown_as_it_is():
    assert format_number("not a number") == "not a number"
    assert format_number("") == ""
