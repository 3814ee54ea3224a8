"""The strict multipart reader on its own: framing defects it must refuse, forms it must read."""

from __future__ import annotations

import pytest

from messaging.ringcentral.emulator.multipart import MultipartError, parse

CT = "multipart/form-data; boundary=XyZ"


def test_parts_and_headers_are_read_in_order():
    body = (
        b"--XyZ\r\nContent-Type: application/json\r\n\r\n{}\r\n"
        b'--XyZ\r\nContent-Disposition: form-data; name="a"; filename="x.png"\r\n'
        b"Content-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ--\r\n"
    )
    first, second = parse(body, CT)
    assert first.content_type == "application/json" and first.body == b"{}"
    assert second.filename == "x.png" and second.body == b"\x89PNG"


def test_a_preamble_before_the_first_boundary_is_allowed():
    body = b"ignored preamble\r\n--XyZ\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XyZ--"
    assert parse(body, CT)[0].body == b"hi"


def test_a_quoted_boundary_and_escaped_filename_are_understood():
    body = (
        b'--a b\r\nContent-Disposition: form-data; name="f"; filename="say \\"hi\\".png"\r\n'
        b"\r\nx\r\n--a b--\r\n"
    )
    [part] = parse(body, 'multipart/mixed; boundary="a b"')
    assert part.filename == 'say "hi".png'


def test_an_rfc5987_filename_wins_over_the_plain_one():
    body = (
        b"--XyZ\r\nContent-Disposition: form-data; name=f; filename=plain.png; "
        b"filename*=UTF-8''caf%C3%A9.png\r\n\r\nx\r\n--XyZ--\r\n"
    )
    assert parse(body, CT)[0].filename == "café.png"


@pytest.mark.parametrize(
    "body",
    [
        b"--XyZ\r\nContent-Type: text/plain\r\n\r\nno closing boundary",
        b"--XyZ junk\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--",
        b"--XyZ\r\nContent-Type: text/plain\r\n  folded\r\n\r\nx\r\n--XyZ--",
        b"--XyZ\r\nno colon here\r\n\r\nx\r\n--XyZ--",
        b"--XyZ\r\nContent-Type: text/plain\r\nx\r\n--XyZ--",
        b"--XyZ\r\nContent-Transfer-Encoding: base64\r\n\r\neA==\r\n--XyZ--",
        b"no boundary anywhere",
    ],
)
def test_framing_defects_are_refused(body):
    with pytest.raises(MultipartError):
        parse(body, CT)


def test_a_content_type_without_boundary_is_refused():
    with pytest.raises(MultipartError):
        parse(b"--XyZ--", "multipart/form-data")
