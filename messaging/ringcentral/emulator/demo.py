"""The demo world used when no RingCentral credentials are configured.

All numbers are in the 555-01xx range reserved for fiction. The constants are the contract the
app and its documentation name; keep them stable.
"""

from __future__ import annotations

from dataclasses import dataclass

from .emulator import Emulator
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

# Extension "Ada Lovelace" (ext. 102), a second user of the same account
DEMO_SECOND_NAME = "Ada Lovelace"
DEMO_SECOND_EMAIL = "ada@demo-office.example"
DEMO_NUMBER_SECOND_USER = "+16505550110"  # local, SmsSender + MmsSender

# Recipients with scripted outcomes; any other number is delivered after a few seconds.
DEMO_RECIPIENT_DELIVERED = "+16505550199"
DEMO_RECIPIENT_OPTED_OUT = "+16505550198"  # SendingFailed, SMS-RC-413 (texted STOP)
DEMO_RECIPIENT_LANDLINE = "+16505550197"  # DeliveryFailed, SMS-CAR-411
DEMO_RECIPIENT_NO_RECEIPT = "+16505550196"  # stays Sent: the carrier never confirms

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


def seed_demo(
    emu: Emulator,
    client_id: str = DEMO_CLIENT_ID,
    client_secret: str = DEMO_CLIENT_SECRET,
    redirect_uris: list[str] | tuple[str, ...] = DEMO_REDIRECT_URIS,
) -> DemoWorld:
    """Register the demo app and create the demo account, its users and recipients."""
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
        DEMO_RECIPIENT_OPTED_OUT, outcome="sending_failed", error_code="SMS-RC-413"
    )
    emu.set_recipient_behaviour(
        DEMO_RECIPIENT_LANDLINE, outcome="delivery_failed", error_code="SMS-CAR-411"
    )
    emu.set_recipient_behaviour(DEMO_RECIPIENT_NO_RECEIPT, outcome="no_receipt")
    return DemoWorld(app=app, office=office, second=second)
