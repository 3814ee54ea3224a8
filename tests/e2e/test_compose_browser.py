"""The compose page in a real Chromium: uploads with previews and a live meter, the text
counter, removing a file, and queueing — with JavaScript, and the same messages without it."""

import base64
import re

import pytest
from playwright.sync_api import expect

from messaging.compose.views import megabytes
from messaging.models import Attachment, DraftAttachment, OutboundMessage
from messaging.ringcentral import limits
from tests import media_samples as samples
from tests.factories import make_connection, make_number
from tests.test_compose import sent  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e


@pytest.fixture
def bob_ready(bob, team, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }
    make_number(make_connection(team, bob), "+16505550100")
    return bob


def drop_files(page, selector, files):
    """Drop files on an element the way a file manager does (a DragEvent with a DataTransfer)."""
    payload = [
        {"name": name, "type": kind, "data": base64.b64encode(data).decode()}
        for name, kind, data in files
    ]
    page.evaluate(
        """([selector, files]) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name, {type: f.type}));
            }
            const zone = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true,
                                                        dataTransfer: transfer}));
            }
        }""",
        [selector, payload],
    )


def meter_text(sizes):
    return (
        f"{len(sizes)} of {limits.MAX_ATTACHMENTS} files · {megabytes(sum(sizes))} of "
        f"{limits.format_size(limits.MAX_ATTACHMENTS_BYTES)}"
    )


def test_uploading_previewing_removing_and_queueing(page, sign_in, bob_ready, team, sent):  # noqa: F811
    sign_in(page, bob_ready, team)
    page.goto("/messages/compose/")
    expect(page.locator("#compose-form.js-enhanced")).to_be_visible()

    # Two photos through the file chooser, one dropped on the drop zone.
    page.get_by_label("Attach files", exact=True).set_input_files(
        [
            {"name": "beach.jpg", "mimeType": "image/jpeg", "buffer": samples.jpeg(640, 480)},
            {"name": "sunset.png", "mimeType": "image/png", "buffer": samples.png(300, 200)},
        ]
    )
    drop_files(page, "#dropzone", [("IMG_0042.HEIC", "image/heic", samples.heic(200, 150))])

    items = page.locator("#attachment-list li[data-state=done]")
    expect(items).to_have_count(3)
    thumbs = page.locator("#attachment-list img.thumb")
    expect(thumbs).to_have_count(3)
    for thumb in thumbs.all():
        expect(thumb).to_be_visible()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
        )
    expect(page.locator("#attachment-list")).to_contain_text("IMG_0042.jpg")
    expect(page.locator("#attachment-list")).to_contain_text("Converted from HEIC photo")

    sizes = list(DraftAttachment.objects.order_by("created_at").values_list("size", flat=True))
    assert len(sizes) == 3
    expect(page.locator("#attachment-meter")).to_have_text(meter_text(sizes))

    # Removing one updates the meter and deletes the draft on the server.
    page.get_by_role("button", name="Remove sunset.png").click()
    expect(items).to_have_count(2)
    remaining = list(
        DraftAttachment.objects.exclude(original_name="sunset.png").values_list("size", flat=True)
    )
    expect(page.locator("#attachment-meter")).to_have_text(meter_text(remaining))

    # Over-long text: the counter says so, with the server's own words under the field.
    text = page.get_by_label("Message", exact=True)
    too_long = "\U0001f600" * 500 + "!"
    text.fill(too_long)
    expect(page.locator("#text-counter")).to_have_text("1,001 of 1,000 characters — 1 too many")
    expect(page.locator("#text-counter")).to_have_class(re.compile("counter-over"))
    message = limits.check_text(too_long)[0].message
    expect(page.locator('[data-errors-for="text"]')).to_contain_text(message)
    page.get_by_role("button", name="Queue message").click()
    assert page.url.endswith("/messages/compose/")  # held back in the browser
    text.fill("Photos from Saturday")
    expect(page.locator("#text-counter")).to_have_text("20 of 1,000 characters")

    page.get_by_label("To", exact=True).fill("(650) 555-0111, +1 650 555 0112")
    page.get_by_label("To", exact=True).blur()
    expect(page.locator("#recipients-preview")).to_have_text(
        "2 recipients: +1 650-555-0111, +1 650-555-0112"
    )

    page.get_by_role("button", name="Queue message").click()
    page.wait_for_url(re.compile(r"/messages/(\d+/)?$"))
    expect(page.locator(".flash")).to_contain_text(
        "Queued: 2 messages, one to each of 2 recipients with 2 files — not sent yet."
    )
    assert OutboundMessage.objects.count() == 2
    assert Attachment.objects.count() == 4
    assert not DraftAttachment.objects.exists()
    assert sorted(sent) == sorted(OutboundMessage.objects.values_list("pk", flat=True))


def test_every_control_is_labelled_and_reachable_by_keyboard(page, sign_in, bob_ready, team):
    sign_in(page, bob_ready, team)
    page.goto("/messages/compose/")
    for label in ("From", "To", "Message", "Attach files", "Reduce photos to fit"):
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    page.get_by_label("Attach files", exact=True).set_input_files(
        [{"name": "a.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    remove = page.get_by_role("button", name="Remove a.txt")
    expect(remove).to_be_visible()
    remove.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#attachment-list li")).to_have_count(0)
    # Focus goes somewhere sensible (the file input) instead of being lost.
    assert page.evaluate("document.activeElement.id") == "id_attachments"


def test_a_refused_file_shows_the_exact_reason(page, sign_in, bob_ready, team):
    sign_in(page, bob_ready, team)
    page.goto("/messages/compose/")
    page.get_by_label("Attach files", exact=True).set_input_files(
        [{"name": "cat.jpg", "mimeType": "image/jpeg", "buffer": samples.windows_program()}]
    )
    expect(page.locator("#attachment-list li[data-state=error]")).to_contain_text(
        "“cat.jpg” is a program, and programs cannot be sent."
    )
    expect(page.locator("#attachment-meter")).to_have_text(meter_text([]))


def test_without_javascript_the_form_gives_the_same_messages(
    page_without_js,
    sign_in,
    bob_ready,
    team,
    sent,  # noqa: F811
):
    page = page_without_js
    sign_in(page, bob_ready, team)
    page.goto("/messages/compose/")
    too_long = "\U0001f600" * 500 + "!"
    page.get_by_label("To", exact=True).fill("+16505550111")
    page.get_by_label("Message", exact=True).fill(too_long)
    page.get_by_label("Attach files", exact=True).set_input_files(
        [
            {"name": f"n{i}.txt", "mimeType": "text/plain", "buffer": f"note {i}".encode()}
            for i in range(11)
        ]
    )
    page.get_by_role("button", name="Queue message").click()
    expect(page.get_by_role("alert")).to_contain_text("The message was not queued.")
    expect(page.locator('[data-errors-for="text"]')).to_have_text(
        limits.check_text(too_long)[0].message
    )
    expect(page.locator('[data-errors-for="attachments"]')).to_contain_text(
        "11 files attached; RingCentral accepts at most 10. Remove 1 file."
    )
    # The files were kept: untick one, fix the text, and send.
    page.get_by_role("checkbox", name="Keep").last.uncheck()
    page.get_by_label("Message", exact=True).fill("Notes attached")
    page.get_by_role("button", name="Queue message").click()
    page.wait_for_url(re.compile(r"/messages/(\d+/)?$"))
    expect(page.locator(".flash")).to_contain_text("Queued: 1 message to +1 650-555-0111")
    assert Attachment.objects.count() == 10


def test_a_large_picture_shows_checking_then_its_preview_and_a_hostile_one_its_refusal(
    page, sign_in, bob_ready, team
):
    sign_in(page, bob_ready, team)
    page.goto("/messages/compose/")
    expect(page.locator("#compose-form.js-enhanced")).to_be_visible()

    # 208 kB that decode to 49 megapixels: sent at once, then checked for a while.
    page.get_by_label("Attach files", exact=True).set_input_files(
        [{"name": "screen.png", "mimeType": "image/png", "buffer": samples.png_solid()}]
    )
    item = page.locator("#attachment-list li").first
    expect(item).to_contain_text("checking…")
    expect(item.locator("progress:not([value])")).to_have_count(1)
    expect(page.locator("#compose-status")).to_contain_text("Checking: “screen.png”")
    expect(item).to_have_attribute("data-state", "done", timeout=30_000)
    expect(item.locator("img.thumb")).to_be_visible()

    drop_files(page, "#dropzone", [("party.gif", "image/gif", samples.gif_screen_bomb())])
    refused = page.locator("#attachment-list li[data-state=error]")
    expect(refused).to_contain_text("“party.gif” is 7,000 × 7,000 pixels with 400 frames")
