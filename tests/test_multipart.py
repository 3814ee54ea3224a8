"""messaging.ringcentral.multipart: the bytes of a send request, built apart from sending it.

The last group of tests sends the built body over a real socket to the emulator and checks what
arrived there: part order, headers, and the sha256 of every file.
"""

import hashlib
import io
import json
import time
import tracemalloc

import pytest
import requests
from django.core.files.storage import FileSystemStorage

from messaging.ringcentral import limits, multipart
from messaging.ringcentral.multipart import (
    AttachmentChanged,
    StoredAttachment,
    build_message_request,
)

FROM = "+16505550100"
TO = "+16505550111"


class MemoryFile:
    """An attachment held in memory; ``size`` can be made to lie."""

    def __init__(self, filename, content_type, data, size=...):
        self.filename = filename
        self.content_type = content_type
        self.data = data
        self.size = len(data) if size is ... else size

    def open(self):
        return io.BytesIO(self.data)


def payload(**fields):
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def boundary_of(request):
    prefix = "multipart/form-data; boundary="
    assert request.content_type.startswith(prefix)
    return request.content_type[len(prefix) :].encode()


def read_all(body, size=8192):
    return b"".join(iter(lambda: body.read(size), b""))


def pattern(size, seed=0):
    """Deterministic, non-repeating-looking bytes of any length."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


@pytest.fixture
def storage(tmp_path):
    return FileSystemStorage(location=tmp_path)


def stored(storage, name, data, content_type="image/jpeg", filename=None):
    saved = storage.save(name, io.BytesIO(data))
    return StoredAttachment(storage, saved, filename or name, content_type, len(data))


# --- wire format ----------------------------------------------------------------------------


def test_sms_without_files_is_plain_json():
    request = build_message_request(FROM, [TO], "Hello 😀", [])
    assert request.content_type == "application/json"
    body = read_all(request.body)
    assert body == (
        b'{"from":{"phoneNumber":"+16505550100"},"to":[{"phoneNumber":"+16505550111"}],'
        b'"text":"Hello \xf0\x9f\x98\x80"}'
    )
    assert json.loads(body) == {
        "from": {"phoneNumber": FROM},
        "to": [{"phoneNumber": TO}],
        "text": "Hello 😀",
    }
    assert "extensionNumber" not in body.decode()
    assert request.content_length == len(body)
    assert request.headers == {"Content-Type": "application/json", "Content-Length": str(len(body))}


def test_mms_bytes_exactly():
    files = [
        MemoryFile("cat.jpg", "image/jpeg", b"\xff\xd8JPEG"),
        MemoryFile("note.txt", "text/plain", b"hello\r\n--not-a-boundary"),
    ]
    request = build_message_request(FROM, [TO, "+16505550122"], "Look", files)
    boundary = boundary_of(request)
    json_body = (
        b'{"from":{"phoneNumber":"+16505550100"},"to":[{"phoneNumber":"+16505550111"},'
        b'{"phoneNumber":"+16505550122"}],"text":"Look"}'
    )
    expected = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="json"; filename="request.json"\r\n'
        b"Content-Type: application/json\r\n"
        b"\r\n" + json_body + b"\r\n"
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="attachment"; filename="cat.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n"
        b"\r\n"
        b"\xff\xd8JPEG\r\n"
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="attachment"; filename="note.txt"\r\n'
        b"Content-Type: text/plain\r\n"
        b"\r\n"
        b"hello\r\n--not-a-boundary\r\n"
        b"--" + boundary + b"--\r\n"
    )
    assert read_all(request.body) == expected
    assert request.content_length == len(expected)


def test_mms_without_text_leaves_text_out():
    request = build_message_request(FROM, [TO], "", [MemoryFile("a.png", "image/png", b"PNG")])
    assert b'"text"' not in read_all(request.body)


def test_boundary_is_random_and_not_in_the_json():
    first = build_message_request(FROM, [TO], "x", [MemoryFile("a.png", "image/png", b"1")])
    second = build_message_request(FROM, [TO], "x", [MemoryFile("a.png", "image/png", b"1")])
    assert boundary_of(first) != boundary_of(second)
    assert len(boundary_of(first)) >= 32


@pytest.mark.parametrize(
    ("sizes", "read_size"),
    [
        ([1], 1),
        ([65_535], 1),
        ([65_536], 8192),
        ([65_537], 1),
        ([65_537], 100_000),
        ([200_000, 3], 8192),
        ([200_000, 3], 100_000),
        ([1_400_000], 8192),
        ([150_000] * 10, 8192),
        ([150_000] * 10, 100_000),
    ],
)
def test_content_length_equals_the_bytes_produced(storage, sizes, read_size):
    files = [
        stored(storage, f"f{i}.bin", pattern(size, seed=i), "application/pdf")
        for i, size in enumerate(sizes)
    ]
    request = build_message_request(FROM, [TO], "sizes", files)
    produced = read_all(request.body, read_size)
    assert len(produced) == request.content_length == len(request.body)
    assert request.body.tell() == request.content_length
    for i, size in enumerate(sizes):
        assert pattern(size, seed=i) in produced


def test_body_can_be_rewound_for_another_attempt(storage):
    request = build_message_request(
        FROM, [TO], "again", [stored(storage, "a.gif", pattern(100_000), "image/gif")]
    )
    first = read_all(request.body)
    request.body.seek(0)
    assert read_all(request.body) == first
    with pytest.raises(io.UnsupportedOperation):
        request.body.seek(10)


def test_iterating_yields_the_same_bytes(storage):
    request = build_message_request(
        FROM, [TO], "iter", [stored(storage, "a.gif", pattern(150_000), "image/gif")]
    )
    chunks = list(request.body)
    assert max(len(chunk) for chunk in chunks) <= multipart.CHUNK_SIZE
    request.body.seek(0)
    assert b"".join(chunks) == read_all(request.body)


@pytest.mark.parametrize(
    "sizes",
    [[1], [multipart.CHUNK_SIZE], [multipart.CHUNK_SIZE - 200, 3], [150_000] * 10],
)
def test_chunks_are_full_buffers_of_the_same_bytes_as_read(storage, sizes):
    files = [
        stored(storage, f"c{i}.bin", pattern(size, seed=i), "application/pdf")
        for i, size in enumerate(sizes)
    ]
    request = build_message_request(FROM, [TO], "chunks", files)
    pieces = [bytes(piece) for piece in request.body.chunks()]
    # Small parts and file data share the buffer: every write but the last is a full one.
    assert all(len(piece) == multipart.CHUNK_SIZE for piece in pieces[:-1])
    assert 0 < len(pieces[-1]) <= multipart.CHUNK_SIZE
    assert request.body.tell() == request.content_length
    request.body.seek(0)
    assert b"".join(pieces) == read_all(request.body, 1000)


def test_chunks_after_a_partial_read_continue_where_it_stopped(storage):
    request = build_message_request(
        FROM, [TO], "mixed", [stored(storage, "a.gif", pattern(300_000), "image/gif")]
    )
    whole = read_all(request.body)
    request.body.seek(0)
    head = request.body.read(777)
    rest = b"".join(bytes(piece) for piece in request.body.chunks())
    assert head + rest == whole
    assert request.body.tell() == len(whole)


# --- streaming memory -----------------------------------------------------------------------


def peak_while_streaming(storage, total, prefix):
    count = 10
    files = [
        stored(storage, f"{prefix}{i}.mp4", pattern(total // count, seed=i), "video/mp4")
        for i in range(count)
    ]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        request = build_message_request(FROM, [TO], "big", files)
        sent = 0
        while chunk := request.body.read(8192):
            sent += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent == request.content_length
    return peak


def test_streaming_memory_stays_flat_as_attachments_grow(storage):
    quarter = peak_while_streaming(storage, 700_000, "quarter")
    full = peak_while_streaming(storage, 1_400_000, "full")
    # One send buffer and each open file's own read buffer, not the 1.4 MB of files; doubling
    # the files adds (almost) nothing.
    assert full < multipart.CHUNK_SIZE + 10 * io.DEFAULT_BUFFER_SIZE + 50_000
    assert full - quarter < multipart.CHUNK_SIZE / 4


# --- filenames ------------------------------------------------------------------------------


def disposition_for(filename):
    request = build_message_request(FROM, [TO], "", [MemoryFile(filename, "image/png", b"PNG")])
    body = read_all(request.body)
    header = body.split(b"Content-Disposition: ")[2].split(b"\r\n")[0]
    return header.decode("ascii")


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("photo.png", 'form-data; name="attachment"; filename="photo.png"'),
        ("../../etc/passwd.png", 'form-data; name="attachment"; filename="passwd.png"'),
        ("C:\\Users\\ada\\me.png", 'form-data; name="attachment"; filename="me.png"'),
        ('say "cheese".png', 'form-data; name="attachment"; filename="say cheese.png"'),
        # CR/LF go; so does everything before the last path separator.
        (
            "x.png\r\nContent-Type: text/html\r\n\r\n<script>",
            'form-data; name="attachment"; filename="html<script>"',
        ),
        ("a.png\r\nX-Evil: 1", 'form-data; name="attachment"; filename="a.pngX-Evil: 1"'),
        ("nul\x00byte.png", 'form-data; name="attachment"; filename="nulbyte.png"'),
        ("", 'form-data; name="attachment"; filename="attachment"'),
        ("...", 'form-data; name="attachment"; filename="attachment"'),
        (
            "Café.png",
            'form-data; name="attachment"; filename="Cafe.png"; filename*=UTF-8\'\'Caf%C3%A9.png',
        ),
        (
            "фото.png",
            'form-data; name="attachment"; filename="attachment.png"; '
            "filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE.png",
        ),
        (
            "😀 100%; ok.png",
            'form-data; name="attachment"; filename="100_ ok.png"; '
            "filename*=UTF-8''%F0%9F%98%80%20100%25%3B%20ok.png",
        ),
    ],
)
def test_hostile_and_foreign_filenames_are_made_safe(filename, expected):
    assert disposition_for(filename) == expected


def test_very_long_filename_is_shortened_but_keeps_its_extension():
    header = disposition_for("a" * 500 + ".png")
    fallback = header.split('filename="')[1].split('"')[0]
    assert fallback.endswith(".png") and len(fallback) <= 120


def test_content_type_is_exactly_the_files_type():
    request = build_message_request(
        FROM, [TO], "", [MemoryFile("a.txt", "text/plain; charset=utf-8", b"hi")]
    )
    assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n" in read_all(request.body)


def test_header_injection_through_the_content_type_is_refused():
    with pytest.raises(limits.LimitsExceeded):
        build_message_request(FROM, [TO], "", [MemoryFile("a", "image/png\r\nX-Evil: 1", b"1")])
    with pytest.raises(ValueError, match="not a safe header value"):
        build_message_request(
            FROM, [TO], "", [MemoryFile("a", "text/plain; a=b\r\nX-Evil: 1", b"1")]
        )


# --- limits and integrity -------------------------------------------------------------------


def test_limits_are_checked_again_with_the_current_sizes(storage):
    too_many = [MemoryFile(f"{i}.png", "image/png", b"1") for i in range(11)]
    with pytest.raises(limits.LimitsExceeded) as excinfo:
        build_message_request(FROM, [TO], "", too_many)
    assert [v.code for v in excinfo.value.violations] == ["too_many_attachments"]

    # The recorded size is unknown; storage says 1,500,001 bytes.
    big = stored(storage, "big.jpg", b"x" * 1_500_001)
    unknown = StoredAttachment(storage, big.name, "big.jpg", "image/jpeg", None)
    with pytest.raises(limits.LimitsExceeded) as excinfo:
        build_message_request(FROM, [TO], "", [unknown])
    assert "1,500,001 bytes" in str(excinfo.value)


def test_text_recipients_and_type_are_checked():
    with pytest.raises(limits.LimitsExceeded, match="Shorten it by 1 character"):
        build_message_request(FROM, [TO], "😀" * 500 + "!", [])
    with pytest.raises(limits.LimitsExceeded, match="11 recipients"):
        build_message_request(FROM, [f"+1650555{i:04d}" for i in range(11)], "hi", [])
    with pytest.raises(limits.LimitsExceeded, match="cannot be sent"):
        build_message_request(FROM, [TO], "", [MemoryFile("a.doc", "application/msword", b"1")])
    with pytest.raises(limits.LimitsExceeded, match="Write a text or attach"):
        build_message_request(FROM, [TO], "", [])


def test_malformed_numbers_are_a_programming_error():
    with pytest.raises(ValueError, match="E.164"):
        build_message_request("6505550100", [TO], "hi", [])
    with pytest.raises(ValueError, match="E.164"):
        build_message_request(FROM, ['+1650"}'], "hi", [])


def test_recorded_size_differing_from_storage_is_refused(storage):
    attachment = stored(storage, "a.jpg", b"12345")
    lying = StoredAttachment(storage, attachment.name, "a.jpg", "image/jpeg", 6)
    with pytest.raises(AttachmentChanged, match="5 bytes in storage but 6 bytes were uploaded"):
        build_message_request(FROM, [TO], "", [lying])


@pytest.mark.parametrize("new_size", [99_999, 100_001, 10])
def test_file_changing_size_while_streaming_raises(storage, new_size):
    attachment = stored(storage, "a.jpg", pattern(100_000))
    request = build_message_request(FROM, [TO], "", [attachment])
    with storage.open(attachment.name, "wb") as handle:
        handle.write(pattern(new_size, seed=7))
    with pytest.raises(AttachmentChanged, match="changed while it was being sent"):
        read_all(request.body)


class ReplacedOnOpen:
    """A stored file that another process replaces (by renaming a new file over its name) just
    after the builder opened it."""

    def __init__(self, attachment, replacement):
        self.filename, self.content_type, self.size = attachment.filename, "image/jpeg", None
        self.attachment, self.replacement = attachment, replacement

    def open(self):
        handle = self.attachment.open()
        self.replacement.replace(self.attachment.storage.path(self.attachment.name))
        return handle


def test_a_file_replaced_under_its_name_once_opened_is_sent_as_opened(storage, tmp_path):
    original = pattern(100_000)
    attachment = stored(storage, "a.jpg", original)
    replacement = tmp_path / "replacement"
    replacement.write_bytes(pattern(50_000, seed=3))
    request = build_message_request(FROM, [TO], "", [ReplacedOnOpen(attachment, replacement)])
    # The size is the open file's, so length and bytes agree with what is sent.
    body = read_all(request.body)
    request.body.close()
    assert len(body) == request.content_length
    assert original in body


# --- over a real socket, to the emulator ----------------------------------------------------

CLIENT_ID, CLIENT_SECRET, REDIRECT = "mmsportal-test", "s3cret", "http://portal.test/cb"


@pytest.fixture
def rc_emulator():
    from messaging.ringcentral.emulator import Emulator, EmulatorConfig

    emu = Emulator(EmulatorConfig()).start(port=0)
    try:
        emu.register_app(CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT])
        extension = emu.add_extension(
            name="Ada", numbers=[{"phone_number": FROM, "features": ["SmsSender", "MmsSender"]}]
        )
        code = emu.authorize_code(CLIENT_ID, REDIRECT, extension.id)
        response = requests.post(
            emu.base_url + "/restapi/oauth/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
            auth=(CLIENT_ID, CLIENT_SECRET),
            timeout=5,
        )
        response.raise_for_status()
        emu.test_token = response.json()["access_token"]
        yield emu
    finally:
        emu.stop()


def post(emu, request):
    return requests.post(
        emu.base_url + "/restapi/v1.0/account/~/extension/~/sms",
        data=request.body,
        headers={**request.headers, "Authorization": f"Bearer {emu.test_token}"},
        timeout=10,
    )


def sends(emu, expected=1, timeout=5.0):
    """The journal's send entries; it is written as the answer goes out, so wait briefly."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [entry for entry in emu.journal_entries("/sms") if entry.method == "POST"]
        if len(entries) >= expected or time.monotonic() > deadline:
            return entries
        time.sleep(0.01)


def test_mms_arrives_with_json_first_and_every_file_intact(rc_emulator, storage):
    contents = {
        "фото.jpg": (pattern(700_000, seed=1), "image/jpeg"),
        "clip.mp4": (pattern(500_000, seed=2), "video/mp4"),
        "card.vcf": (b"BEGIN:VCARD\r\nFN:Ada\r\nEND:VCARD\r\n", "text/vcard"),
    }
    files = [
        stored(storage, f"upload-{i}", data, ctype, name)
        for i, (name, (data, ctype)) in enumerate(contents.items())
    ]
    request = build_message_request(FROM, [TO], "Hi 😀", files)
    response = post(rc_emulator, request)
    assert response.status_code == 200, response.text

    (entry,) = sends(rc_emulator)
    assert entry.outcome == "accepted"
    assert entry.header("Content-Length") == str(request.content_length)
    assert entry.body_size == request.content_length
    assert entry.header("Transfer-Encoding") is None
    assert entry.content_type == request.content_type

    json_part, *file_parts = entry.parts
    expected_json = payload(
        **{"from": {"phoneNumber": FROM}, "to": [{"phoneNumber": TO}], "text": "Hi 😀"}
    )
    assert json_part.header("Content-Disposition") == (
        'form-data; name="json"; filename="request.json"'
    )
    assert json_part.header("Content-Type") == "application/json"
    assert json_part.sha256 == hashlib.sha256(expected_json).hexdigest()

    assert len(file_parts) == len(contents)
    for part, (_name, (data, ctype)) in zip(file_parts, contents.items(), strict=True):
        assert part.header("Content-Type") == ctype
        assert part.size == len(data)
        assert part.sha256 == hashlib.sha256(data).hexdigest()
    assert file_parts[0].header("Content-Disposition") == (
        'form-data; name="attachment"; filename="attachment.jpg"; '
        "filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE.jpg"
    )
    assert file_parts[1].header("Content-Disposition") == (
        'form-data; name="attachment"; filename="clip.mp4"'
    )

    message = response.json()
    assert message["from"]["phoneNumber"] == FROM
    assert [to["phoneNumber"] for to in message["to"]] == [TO]
    stored_names = [a["fileName"] for a in message["attachments"] if a.get("fileName")]
    assert "фото.jpg" in stored_names


def test_sms_arrives_as_json(rc_emulator):
    request = build_message_request(FROM, [TO], "Plain text ✓", [])
    response = post(rc_emulator, request)
    assert response.status_code == 200, response.text
    (entry,) = sends(rc_emulator)
    assert entry.content_type == "application/json"
    assert entry.parts is None
    assert entry.json == {
        "from": {"phoneNumber": FROM},
        "to": [{"phoneNumber": TO}],
        "text": "Plain text ✓",
    }
    assert entry.body_size == request.content_length


def test_file_shrinking_before_the_upload_fails_loudly_and_nothing_is_stored(rc_emulator, storage):
    attachment = stored(storage, "a.jpg", pattern(300_000))
    request = build_message_request(FROM, [TO], "", [attachment])
    with storage.open(attachment.name, "wb") as handle:
        handle.write(pattern(200_000))
    with pytest.raises(AttachmentChanged):
        post(rc_emulator, request)
    # Whatever the emulator made of the cut-off body, it did not take it as a message.
    assert all(entry.outcome != "accepted" for entry in sends(rc_emulator, timeout=1.0))
    assert len(rc_emulator.messages) == 0
