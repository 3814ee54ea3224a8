"""The demo world used when no RingCentral credentials are configured.

All numbers are in the 555-01xx range reserved for fiction. The constants are the contract the
app and its documentation name; keep them stable.

Besides the users and the recipients with scripted delivery outcomes, the world has contacts
who answer (``contacts.py``) and a little history, so a newly linked account already has
conversations: texts both ways dated minutes to days before the seed, one of them a photo.
"""

from __future__ import annotations

from dataclasses import dataclass

from .contacts import sunset_png
from .emulator import Emulator
from .messages import OPTED_OUT_ERROR, StoredMessage
from .state import App, Extension

DEMO_CLIENT_ID = "mmsportal-demo-client"
DEMO_CLIENT_SECRET = "mmsportal-demo-secret"  # noqa: S105 - a fixed credential of the demo world
DEMO_REDIRECT_URIS = (
    "http://127.0.0.1:8000/ringcentral/callback/",
    "http://localhost:8000/ringcentral/callback/",
)

DEMO_COMPANY = "Demo Office"

# Extension "Demo Office" (ext. 101)
DEMO_OFFICE_NAME = "Demo Office"
DEMO_OFFICE_EMAIL = "office@demo-office.example"
DEMO_NUMBER_SMS_MMS = "+16505550100"  # local, SmsSender + MmsSender: texts and pictures
DEMO_NUMBER_SMS_ONLY = "+16505550101"  # local, SmsSender only: attachments fail with MSG-242
DEMO_NUMBER_TOLL_FREE = "+18005550102"  # toll-free, SmsSender (never MmsSender)
DEMO_NUMBER_FAX = "+16505550103"  # FaxOnly: sending fails with MSG-241
DEMO_NUMBER_NO_FEATURES = "+16505550104"  # voice only, no features: sending fails with MSG-367
# High Volume SMS (A2PSmsSender, no SmsSender): text-only batches through /a2p-sms/batches.
DEMO_NUMBER_HIGH_VOLUME = "+16505550105"

# Extension "Ada Lovelace" (ext. 102), a second user of the same account
DEMO_SECOND_NAME = "Ada Lovelace"
DEMO_SECOND_EMAIL = "ada@demo-office.example"
DEMO_NUMBER_SECOND_USER = "+16505550110"  # local, SmsSender + MmsSender

# Recipients with scripted outcomes; any other number is delivered after a few seconds.
DEMO_RECIPIENT_DELIVERED = "+16505550199"
DEMO_RECIPIENT_OPTED_OUT = "+16505550198"  # SendingFailed, SMS-RC-413 (texted STOP)
DEMO_RECIPIENT_LANDLINE = "+16505550197"  # DeliveryFailed, SMS-CAR-411
DEMO_RECIPIENT_NO_RECEIPT = "+16505550196"  # stays Sent: the carrier never confirms

# Contacts who answer what they receive, DEMO_CONTACT_DELAY seconds after it is delivered.
DEMO_CONTACT_REPLIES = "+16505550150"  # "Thanks! Got your message: <your text>"
DEMO_CONTACT_PHOTO = "+16505550151"  # a photo (small PNG) with a caption
DEMO_CONTACT_STOPS = "+16505550152"  # texts STOP, and is then opted out of that number
DEMO_CONTACT_CUSTOMER = "+16505550153"  # answers nothing; part of the seeded history
DEMO_CONTACT_DELAY = 5.0

# Each user's phone numbers, in the form ``Emulator.add_extension`` takes.
_OFFICE_NUMBERS = (
    {
        "phone_number": DEMO_NUMBER_SMS_MMS,
        "features": ["SmsSender", "MmsSender", "CallerId"],
        "label": "Main line",
        "primary": True,
        "location": "Palo Alto, CA",
    },
    {
        "phone_number": DEMO_NUMBER_SMS_ONLY,
        "features": ["SmsSender", "CallerId"],
        "label": "Text only",
        "location": "Palo Alto, CA",
    },
    {
        "phone_number": DEMO_NUMBER_TOLL_FREE,
        "features": ["SmsSender", "CallerId"],
        "payment_type": "TollFree",
        "label": "Toll-free",
    },
    {
        "phone_number": DEMO_NUMBER_FAX,
        "features": [],
        "type": "FaxOnly",
        "label": "Fax",
    },
    {
        "phone_number": DEMO_NUMBER_NO_FEATURES,
        "features": [],
        "type": "VoiceOnly",
        "label": "Front desk (voice)",
    },
    {
        "phone_number": DEMO_NUMBER_HIGH_VOLUME,
        "features": ["A2PSmsSender", "CallerId"],
        "label": "High Volume",
        "location": "Palo Alto, CA",
    },
)
_SECOND_NUMBERS = (
    {
        "phone_number": DEMO_NUMBER_SECOND_USER,
        "features": ["SmsSender", "MmsSender", "CallerId"],
        "label": "Ada's line",
        "location": "Palo Alto, CA",
    },
)


@dataclass(frozen=True)
class DemoWorld:
    app: App
    office: Extension
    second: Extension
    history: tuple[StoredMessage, ...]


_MINUTE = 60.0
_HOUR = 3600.0
_DAY = 86400.0


def _seed_history(emu: Emulator) -> tuple[StoredMessage, ...]:
    """The office's conversations before the seed, oldest first; only the newest text unread."""
    now = emu.now()
    office = DEMO_NUMBER_SMS_MMS
    photo = ("storefront.png", "image/png", sunset_png())
    return (
        emu.inbound(
            DEMO_CONTACT_CUSTOMER,
            office,
            "Hi! Are you open this Saturday?",
            at=now - 3 * _DAY,
            read=True,
        ),
        emu.outbound_elsewhere(
            office,
            [DEMO_CONTACT_CUSTOMER],
            "Yes, from 9 to 1. See you then!",
            at=now - 3 * _DAY + 12 * _MINUTE,
        ),
        emu.outbound_elsewhere(
            office,
            [DEMO_CONTACT_PHOTO],
            "Could you send us a picture of the new sign?",
            at=now - 26 * _HOUR,
        ),
        emu.inbound(
            DEMO_CONTACT_PHOTO,
            office,
            "Here it is, freshly installed.",
            [photo],
            at=now - 26 * _HOUR + 7 * _MINUTE,
            read=True,
        ),
        emu.inbound(
            DEMO_CONTACT_REPLIES,
            office,
            "Can you call me back when you have a minute?",
            at=now - 40 * _MINUTE,
        ),
    )


def seed_demo(
    emu: Emulator,
    client_id: str = DEMO_CLIENT_ID,
    client_secret: str = DEMO_CLIENT_SECRET,
    redirect_uris: list[str] | tuple[str, ...] = DEMO_REDIRECT_URIS,
) -> DemoWorld:
    """Register the demo app and create the demo account, its users, recipients, answering
    contacts and the office's message history."""
    app = emu.register_app(client_id, client_secret, redirect_uris, name="mmsportal (demo)")
    account = emu.add_account(company=DEMO_COMPANY, main_number=DEMO_NUMBER_SMS_MMS)
    office = emu.add_extension(
        DEMO_OFFICE_NAME, DEMO_OFFICE_EMAIL, _OFFICE_NUMBERS, account.id, extension_number="101"
    )
    second = emu.add_extension(
        DEMO_SECOND_NAME, DEMO_SECOND_EMAIL, _SECOND_NUMBERS, account.id, extension_number="102"
    )
    emu.set_recipient_behaviour(DEMO_RECIPIENT_DELIVERED, outcome="delivered")
    emu.set_recipient_behaviour(
        DEMO_RECIPIENT_OPTED_OUT, outcome="sending_failed", error_code=OPTED_OUT_ERROR
    )
    emu.set_recipient_behaviour(
        DEMO_RECIPIENT_LANDLINE, outcome="delivery_failed", error_code="SMS-CAR-411"
    )
    emu.set_recipient_behaviour(DEMO_RECIPIENT_NO_RECEIPT, outcome="no_receipt")
    # History first: scripts would answer the back-dated texts sent to their contacts.
    history = _seed_history(emu)
    emu.script_contact(DEMO_CONTACT_REPLIES, "reply", DEMO_CONTACT_DELAY)
    emu.script_contact(DEMO_CONTACT_PHOTO, "photo", DEMO_CONTACT_DELAY)
    emu.script_contact(DEMO_CONTACT_STOPS, "stop", DEMO_CONTACT_DELAY)
    return DemoWorld(app=app, office=office, second=second, history=history)
