"""The emulated world that outlives ``reset()``: apps, accounts, extensions, their phone numbers,
and how each recipient number behaves after a send."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .config import OUTCOMES, require_one_of

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")

DEFAULT_SCOPES = (
    "SMS",
    "ReadMessages",
    "EditMessages",
    "ReadAccounts",
    "SubscriptionWebhook",
    "A2PSMS",
)

PHONE_FEATURES = (
    "CallerId",
    "SmsSender",
    "A2PSmsSender",
    "MmsSender",
    "InternationalSmsSender",
    "Delegated",
)
PHONE_TYPES = ("VoiceFax", "VoiceOnly", "FaxOnly")

# Error codes reported when a behaviour names a failure but no code.
DEFAULT_ERROR_CODES = {"delivery_failed": "SMS-CAR-500", "sending_failed": "SMS-RC-500"}


@dataclass
class App:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    name: str = "Emulated app"

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


@dataclass
class Account:
    id: str
    company: str
    main_number: str | None = None


@dataclass
class PhoneNumber:
    id: int
    phone_number: str
    features: list[str]
    type: str = "VoiceFax"
    usage_type: str = "DirectNumber"
    payment_type: str = "Local"
    label: str | None = None
    status: str = "Normal"
    primary: bool = False
    location: str | None = None

    def has(self, feature: str) -> bool:
        return feature in self.features


@dataclass
class Extension:
    id: int
    account_id: str
    name: str
    email: str
    extension_number: str
    numbers: list[PhoneNumber] = field(default_factory=list)
    type: str = "User"
    status: str = "Enabled"

    @property
    def first_name(self) -> str:
        return self.name.split(" ", 1)[0]

    @property
    def last_name(self) -> str:
        parts = self.name.split(" ", 1)
        return parts[1] if len(parts) > 1 else ""

    def number(self, phone_number: str) -> PhoneNumber | None:
        return next((n for n in self.numbers if n.phone_number == phone_number), None)


@dataclass(frozen=True)
class RecipientBehaviour:
    """What happens to a message sent to one number.

    ``outcome``: ``delivered`` (Queued -> Sent -> Delivered), ``delivery_failed``
    (Queued -> Sent -> DeliveryFailed), ``sending_failed`` (Queued -> SendingFailed),
    ``no_receipt`` (Queued -> Sent, for ever). ``sent_after``/``delivered_after`` override the
    config's delays for this number.
    """

    outcome: str = "delivered"
    error_code: str | None = None
    sent_after: float | None = None
    delivered_after: float | None = None

    def __post_init__(self) -> None:
        require_one_of("outcome", self.outcome, OUTCOMES)
        if self.error_code is None and self.outcome in DEFAULT_ERROR_CODES:
            object.__setattr__(self, "error_code", DEFAULT_ERROR_CODES[self.outcome])
        if self.outcome in ("delivered", "no_receipt") and self.error_code is not None:
            raise ValueError(f"outcome {self.outcome} carries no error code")


class World:
    """Registry of apps, accounts and extensions. All methods are thread-safe.

    ``Emulator`` is the public way in: its methods of the same names hold the defaults, so these
    take every value (``add_account`` keeps its own, for the account made on demand).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.apps: dict[str, App] = {}
        self.accounts: dict[str, Account] = {}
        self.extensions: dict[int, Extension] = {}
        self.behaviours: dict[str, RecipientBehaviour] = {}
        self._next_account = 2_208_000_001
        self._next_extension = 2_208_100_001
        self._next_number = 1_190_000_001
        self.default_account_id: str | None = None

    def register_app(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str],
        scopes: Iterable[str] | None,
        name: str,
    ) -> App:
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret are required")
        app = App(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uris=list(redirect_uris),
            scopes=tuple(scopes) if scopes is not None else DEFAULT_SCOPES,
            name=name,
        )
        with self._lock:
            self.apps[client_id] = app
        return app

    def add_account(
        self, company: str = "Emulated Account", main_number: str | None = None
    ) -> Account:
        with self._lock:
            account = Account(id=str(self._next_account), company=company, main_number=main_number)
            self._next_account += 1
            self.accounts[account.id] = account
            if self.default_account_id is None:
                self.default_account_id = account.id
            return account

    def add_extension(
        self,
        name: str,
        email: str | None,
        numbers: Iterable[dict[str, Any]],
        account_id: str | None,
        extension_number: str | None,
    ) -> Extension:
        with self._lock:
            if account_id is None:
                if self.default_account_id is None:
                    self.add_account()
                account_id = self.default_account_id
            account_id = str(account_id)
            if account_id not in self.accounts:
                raise ValueError(f"unknown account {account_id}")
            ext_id = self._next_extension
            self._next_extension += 1
            siblings = [e for e in self.extensions.values() if e.account_id == account_id]
            extension = Extension(
                id=ext_id,
                account_id=account_id,
                name=name,
                email=email or f"ext{ext_id}@example.invalid",
                extension_number=extension_number or str(101 + len(siblings)),
            )
            for spec in numbers:
                extension.numbers.append(self._make_number(spec))
            if extension.numbers and not any(n.primary for n in extension.numbers):
                extension.numbers[0].primary = True
            self.extensions[ext_id] = extension
            account = self.accounts[account_id]
            if account.main_number is None and extension.numbers:
                account.main_number = extension.numbers[0].phone_number
            return extension

    def _make_number(self, spec: dict[str, Any]) -> PhoneNumber:
        allowed = {
            "phone_number",
            "features",
            "type",
            "usage_type",
            "payment_type",
            "label",
            "status",
            "primary",
            "location",
        }
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown phone number fields: {sorted(unknown)}")
        phone = spec.get("phone_number", "")
        if not E164.match(phone):
            raise ValueError(f"{phone!r} is not an E.164 number")
        if self.owner_of(phone) is not None:
            raise ValueError(f"{phone} already belongs to an extension")
        features = list(spec.get("features", []))
        bad = set(features) - set(PHONE_FEATURES)
        if bad:
            raise ValueError(f"unknown phone number features: {sorted(bad)}")
        number_type = spec.get("type", "VoiceFax")
        require_one_of("type", number_type, PHONE_TYPES)
        number = PhoneNumber(
            id=self._next_number,
            phone_number=phone,
            features=features,
            type=number_type,
            usage_type=spec.get("usage_type", "DirectNumber"),
            payment_type=spec.get("payment_type", "Local"),
            label=spec.get("label"),
            status=spec.get("status", "Normal"),
            primary=bool(spec.get("primary", False)),
            location=spec.get("location"),
        )
        self._next_number += 1
        return number

    def owner_of(self, phone_number: str) -> Extension | None:
        with self._lock:
            for extension in self.extensions.values():
                if extension.number(phone_number) is not None:
                    return extension
        return None

    def set_behaviour(self, phone_number: str, behaviour: RecipientBehaviour | None) -> None:
        if not E164.match(phone_number):
            raise ValueError(f"{phone_number!r} is not an E.164 number")
        with self._lock:
            if behaviour is None:
                self.behaviours.pop(phone_number, None)
            else:
                self.behaviours[phone_number] = behaviour

    def behaviour_for(self, phone_number: str, default_outcome: str) -> RecipientBehaviour:
        with self._lock:
            found = self.behaviours.get(phone_number)
        return found if found is not None else RecipientBehaviour(outcome=default_outcome)
