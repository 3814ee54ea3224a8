"""Steps for the child-process tests: importable without Django, as a child imports them."""

import os

from messaging.compose.media import MediaError


def allocate(size: int) -> int:
    return len(bytearray(size))


def spin() -> None:
    while True:
        pass


def refuse() -> None:
    raise MediaError("“odd.bin” is refused by its step.")


def die() -> None:
    os._exit(3)
