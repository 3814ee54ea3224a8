"""How a queued message reaches a worker, without the state machine importing Celery code.

The sending room registers the function that hands a message to a worker when the app starts
(messaging/apps.py: `sending.tasks.send_soon`); `states.enqueue` calls `send_soon` after the
commit that queued the message. Until one is registered (a process that never sends, such as a
migration), nothing is handed off and beat's dispatcher finds the message instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

_sender: Callable[[int], None] | None = None


def register(sender: Callable[[int], None]) -> None:
    global _sender
    _sender = sender


def send_soon(message_id: int) -> None:
    if _sender is None:
        log.warning("No sender registered; message %s waits for the dispatcher", message_id)
        return
    _sender(message_id)
