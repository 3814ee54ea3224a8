"""Scripted contacts: phone numbers outside RingCentral that answer the messages they get.

A contact sees a message when its recipient timeline reaches Delivered (Sent, for a carrier that
never confirms); a message that fails to send or to deliver is never seen. The answer is stored
``delay`` seconds later on the emulator clock, at the first tick from then on (tests call
``Emulator.advance``). Scripts:

    reply  "Thanks! Got your message: <the text>"
    photo  a small PNG with a caption (a text saying so when the number takes no pictures)
    stop   "STOP", which opts the contact out of that number (``optout.py``)

In a group MMS the contact answers the whole group.
"""

from __future__ import annotations

import functools
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .inbound import FileTuple, receive
from .messages import RecipientTrack, StoredMessage

if TYPE_CHECKING:
    from .emulator import Emulator

SCRIPTS = ("reply", "photo", "stop")

REPLY_PREFIX = "Thanks! Got your message: "
PHOTO_CAPTION = "Here is a photo for you."
PHOTO_REFUSED = "I wanted to send you a photo, but your number does not take pictures."


@dataclass(frozen=True)
class ContactScript:
    script: str
    delay: float = 5.0

    def __post_init__(self) -> None:
        if self.script not in SCRIPTS:
            raise ValueError(f"script must be one of {SCRIPTS}")
        if isinstance(self.delay, bool) or not isinstance(self.delay, int | float):
            raise ValueError("delay must be a number of seconds")
        if self.delay < 0:
            raise ValueError("delay must not be negative")


class Contacts:
    """Scripts by contact phone number, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, ContactScript] = {}

    def set(self, phone_number: str, script: ContactScript | None) -> None:
        with self._lock:
            if script is None:
                self._scripts.pop(phone_number, None)
            else:
                self._scripts[phone_number] = script

    def get(self, phone_number: str) -> ContactScript | None:
        with self._lock:
            return self._scripts.get(phone_number)

    def all(self) -> dict[str, ContactScript]:
        with self._lock:
            return dict(self._scripts)


def _reached_at(track: RecipientTrack) -> float | None:
    if track.outcome == "delivered":
        return track.final_at
    if track.outcome == "no_receipt":
        return track.sent_at
    return None


def on_outbound(emu: Emulator, message: StoredMessage) -> None:
    """Schedule the answer of every scripted contact the new outbound ``message`` will reach."""
    for track in message.recipients:
        script = emu.contacts.get(track.phone_number)
        reached = _reached_at(track)
        if script is None or reached is None:
            continue
        group = [n for n in message.to_numbers if n != track.phone_number]
        answer = functools.partial(_answer, emu, script.script, track.phone_number, message, group)
        emu.scheduler.at(reached + script.delay, answer)


def _answer(
    emu: Emulator, script: str, contact: str, message: StoredMessage, group: list[str]
) -> None:
    files: list[FileTuple] = []
    if script == "stop":
        text = "STOP"
    elif script == "reply":
        text = REPLY_PREFIX + message.text if message.text else "Thanks! Got your picture."
    else:
        extension = emu.world.owner_of(message.from_number)
        number = extension.number(message.from_number) if extension else None
        if number is not None and number.has("MmsSender"):
            text = PHOTO_CAPTION
            files = [("photo.png", "image/png", sunset_png())]
        else:
            text = PHOTO_REFUSED
    receive(emu, contact, message.from_number, text, files, also_to=group)


@functools.cache
def sunset_png(width: int = 96, height: int = 64) -> bytes:
    """A small valid PNG (8-bit RGB): a sky fading to orange and a sun. Built with zlib."""
    rows = bytearray()
    sun_x, sun_y, radius = width * 2 // 3, height * 3 // 5, height // 5
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            if (x - sun_x) ** 2 + (y - sun_y) ** 2 <= radius**2:
                pixel = (255, 214, 90)
            elif y > height * 4 // 5:
                pixel = (40, 70, 110)  # the sea
            else:
                shade = y * 255 // height
                pixel = (60 + shade * 3 // 4, 90 + shade // 3, 200 - shade * 2 // 3)
            rows.extend(pixel)

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )
