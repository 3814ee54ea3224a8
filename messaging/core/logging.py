"""Log hygiene: no token, secret or full phone number ever reaches a log line."""

import logging
import re

# Bearer/Basic credentials, OAuth form and JSON fields, and query parameters that carry secrets.
# An OAuth authorization code travels only as a parameter (`code=…`); "code: SMS-RC-413" in a
# sentence is RingCentral's error code, which people need to read.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)(\b(?:access_token|refresh_token|client_secret|code_verifier|token|"
        r"verificationToken|password)[\"']?\s*[:=]\s*[\"']?)[^\s&\"',}]+"
    ),
    re.compile(r"(?i)((?<![\w-])code=)[^\s&\"',}]+"),
]
# Invitation links carry a signed token in the path; it grants team membership while valid.
_INVITATION_PATH = re.compile(r"(/invitations/)[^/\s\"']+")
# E.164 numbers: keep the country code and the last two digits, enough to tell numbers apart.
_PHONE = re.compile(r"\+(\d)(\d{5,12})(\d{2})\b")


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    text = _INVITATION_PATH.sub(r"\1[redacted]", text)
    return _PHONE.sub(lambda m: f"+{m.group(1)}{'•' * len(m.group(2))}{m.group(3)}", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
