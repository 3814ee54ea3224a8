"""No token, secret, invitation link or full phone number reaches a log line."""

import logging
import os
import subprocess
import sys

from django.conf import settings

from messaging.core.logging import RedactSecretsFilter, redact


def test_bearer_and_basic_credentials_are_redacted():
    line = "Authorization: Bearer U0pDMDFQMDlQQVMwMHxBQUFWRkVLcVV8abc.def, Basic Y2xpZW50OnNlY3I="
    cleaned = redact(line)
    assert "U0pDMDFQ" not in cleaned and "Y2xpZW50" not in cleaned
    assert cleaned.count("[redacted]") == 2


def test_token_fields_in_form_and_json_bodies_are_redacted():
    assert "s3cr3t" not in redact("grant_type=refresh_token&refresh_token=s3cr3t&x=1")
    assert "abc123" not in redact('{"access_token": "abc123", "expires_in": 3600}')
    assert "v3rifier" not in redact("code=authcode&code_verifier=v3rifier")


def test_error_codes_are_not_mistaken_for_secrets():
    assert redact('{"errorCode": "MSG-245"}') == '{"errorCode": "MSG-245"}'


def test_invitation_links_are_redacted():
    cleaned = redact('"GET /invitations/eyJrZXkiOiIxMjMifQ:1tXyZ:abc/ HTTP/1.1" 403')
    assert "eyJrZXki" not in cleaned
    assert "/invitations/[redacted]/" in cleaned


def test_phone_numbers_keep_only_country_code_and_last_two_digits():
    assert redact("sent to +16505550123") == "sent to +1••••••••23"


def test_the_filter_rewrites_the_record_and_is_on_every_configured_handler():
    record = logging.LogRecord(
        "messaging", logging.INFO, __file__, 1, "refresh with refresh_token=%s", ("tok",), None
    )
    assert RedactSecretsFilter().filter(record)
    assert record.getMessage() == "refresh with refresh_token=[redacted]"
    for handler in settings.LOGGING["handlers"].values():
        assert "redact" in handler["filters"]
    assert not settings.CELERY_WORKER_HIJACK_ROOT_LOGGER


def test_with_debug_on_every_console_line_is_redacted_too():
    # Django gives its loggers their own console handler while DEBUG is on; a 404 for an
    # invitation link must not print the link's token through it.
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.request').warning('Not Found: /invitations/eyJrZXkiOjF9:abc/')"
    )
    env = {**os.environ, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "mmsportal.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "/invitations/[redacted]/" in result.stderr
    assert "eyJrZXkiOjF9" not in result.stderr + result.stdout
