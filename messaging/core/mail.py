"""Where emails go when no mail server is configured (development and demo mode)."""

import sys

from django.core.mail.backends.console import EmailBackend


class ConsoleEmailBackend(EmailBackend):
    """Prints each email on the terminal as it is.

    A Celery worker sends what is printed through its logger, whose redaction would mangle the
    email (masked numbers, codes taken for secrets); this writes to the terminal itself."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("stream", sys.__stdout__)
        super().__init__(*args, **kwargs)
