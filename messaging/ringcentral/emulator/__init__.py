"""A RingCentral emulator: a real HTTP server for tests and demo mode, free of Django.

See README.md in this folder for what is emulated and which unverified behaviours were chosen.
"""

from .config import EmulatorConfig
from .emulator import Emulator
from .faults import Fault
from .journal import JournalEntry, PartRecord
from .messages import StoredMessage
from .standalone import serve_forever

__all__ = [
    "Emulator",
    "EmulatorConfig",
    "Fault",
    "JournalEntry",
    "PartRecord",
    "StoredMessage",
    "serve_forever",
]
