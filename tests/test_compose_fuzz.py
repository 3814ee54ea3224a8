"""Property tests: whatever is posted to the compose page or handed to media.ingest, the answer
is a clear refusal, never a server error, and an invalid submission creates nothing.

The default run tries a few hundred examples per property; HYPOTHESIS_PROFILE=full tries 5,000.
"""

import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.compose import media
from messaging.models import Attachment, DraftAttachment, OutboundMessage, Recipient
from tests import media_samples as samples
from tests.factories import make_connection, make_number
from tests.test_compose import FORM, _fast_passwords, _private_media, sent  # noqa: F401 - fixtures

FULL = os.environ.get("HYPOTHESIS_PROFILE") == "full"
EXAMPLES = 5000 if FULL else 200
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Unicode text as a browser can send it (UTF-8 cannot carry lone surrogates).
TEXT = st.characters(exclude_categories=("Cs",))

VALID_NUMBERS = ["+16505550111", "(650) 555-0112", "650.555.0113", "+1 650 555 0114"]
RECIPIENT_CHARS = list("0123456789+-() .,;\n\text#*abcdefx") + [
    "\u202e",
    "\x00",
    "\uff11",
    "\u00a0",
]

SAMPLES = {
    "photo.jpg": samples.jpeg(64, 48, orientation=6, gps=True),
    "shot.png": samples.png(30, 20, text="hi"),
    "a.heic": samples.heic(32, 24),
    "wave.gif": samples.gif_animated(),
    "doc.pdf": samples.pdf(600),
    "card.vcf": b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nEND:VCARD\r\n",
    "a.zip": samples.zip_file({"x.txt": b"hello"}),
    "prog.jpg": samples.windows_program(),
    "clip.mp4": samples.mp4(),
}
HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\boot.ini",
    "a\x00b.txt",
    "\u202egpj.exe",
    "x" * 500 + ".jpg",
    "",
    "CON",
    "a\r\nContent-Type: text/html\r\n.txt",
    'quote".txt',
]


def mutated(data: bytes, draw) -> bytes:
    """Truncate, flip or splice bytes of a valid file."""
    if not data:
        return data
    action = draw(st.sampled_from(["truncate", "flip", "insert", "append"]))
    at = draw(st.integers(0, len(data) - 1))
    if action == "truncate":
        return data[:at]
    if action == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if action == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
    return data + draw(st.binary(min_size=1, max_size=256))


@st.composite
def files(draw):
    name = draw(
        st.one_of(
            st.sampled_from(list(SAMPLES) + HOSTILE_NAMES),
            st.text(TEXT, max_size=300),
        )
    )
    source = draw(st.sampled_from(["sample", "mutated", "random"]))
    if source == "random":
        data = draw(st.binary(max_size=3000))
    else:
        data = SAMPLES[draw(st.sampled_from(list(SAMPLES)))]
        if source == "mutated":
            data = mutated(data, draw)
    return name, data


@st.composite
def compose_forms(draw, sender_pk):
    form = {
        "sender": draw(st.one_of(st.just(str(sender_pk)), st.text(TEXT, max_size=12))),
        "to": draw(
            st.one_of(
                st.lists(st.sampled_from(VALID_NUMBERS), min_size=1, max_size=12).map(", ".join),
                st.text(st.sampled_from(RECIPIENT_CHARS), max_size=80),
                st.text(TEXT, max_size=40),
            )
        ),
        "text": draw(
            st.one_of(
                st.text(TEXT, max_size=1100),
                st.integers(0, 520).map(lambda n: "\U0001f600" * n),
                st.just(""),
            )
        ),
        "mode": draw(st.one_of(st.sampled_from(["separate", "group"]), st.text(TEXT, max_size=8))),
        "uploads": draw(
            st.lists(st.one_of(st.uuids().map(str), st.text(TEXT, max_size=40)), max_size=3)
        ),
    }
    if draw(st.booleans()):
        form["fit_images"] = "on"
    return form, draw(st.lists(files(), max_size=3))


def multipart(fields: dict, attached: list[tuple[str, bytes]], file_field="attachments"):
    """Encode a form as a browser does, with file names exactly as given (quotes and line
    breaks escaped the way browsers escape them), which Django's test client would refuse."""
    boundary = f"----fuzz{uuid.uuid4().hex}"
    parts = []
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
            parts.append(head.encode() + item.encode() + b"\r\n")
    for name, data in attached:
        safe = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{safe}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def counts():
    return (
        OutboundMessage.objects.count(),
        Recipient.objects.count(),
        Attachment.objects.count(),
    )


@pytest.fixture
def number(team, bob):
    return make_number(make_connection(team, bob))


def test_compose_never_fails_and_invalid_input_creates_nothing(bob_client, number, sent):  # noqa: F811
    @FUZZ
    @given(submission=compose_forms(number.pk))
    def check(submission):
        before = counts()
        body, content_type = multipart(*submission)
        response = bob_client.post("/messages/compose/", body, content_type=content_type)
        assert response.status_code < 500
        if response.status_code == 302:
            assert counts()[0] > before[0]
        else:
            assert response.status_code in (400, 413)
            assert counts() == before

    check()


def test_check_endpoint_answers_every_form_with_json(bob_client, number):
    @FUZZ
    @given(submission=compose_forms(number.pk))
    def check(submission):
        form, _ = submission
        response = bob_client.post("/messages/compose/check/", form)
        assert response.status_code == 200
        answer = response.json()
        assert answer["ok"] is (not answer["errors"])

    check()


def test_upload_endpoint_answers_every_file_with_json(bob_client, number):
    @FUZZ
    @given(item=files())
    def check(item):
        body, content_type = multipart({}, [item], file_field="file")
        response = bob_client.post(
            "/messages/compose/upload/" + FORM, body, content_type=content_type
        )
        assert response.status_code in (201, 400, 413)
        answer = response.json()
        assert answer["ok"] is (response.status_code == 201)
        if not answer["ok"]:
            assert answer["error"]
        DraftAttachment.objects.all().delete()

    check()


@FUZZ
@given(item=files())
def test_ingest_refuses_only_with_media_error(item):
    name, data = item
    try:
        result = media.ingest(name, data)
    except media.MediaError as refused:
        assert refused.message and "{name}" not in refused.message
        return
    assert result.size == len(result.data) > 0
    assert result.name and "/" not in result.name and "\\" not in result.name
    assert len(result.name) <= media.MAX_NAME_CHARS
