"""Tunable behaviour of the emulator.

Defaults follow RingCentral's documented numbers (token lifetimes, rate-limit groups, MMS limits);
tests shrink or switch them off. Every field can be changed at run time through
``Emulator.update_config`` or ``POST /_emulator/config``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

RATE_LIMIT_GROUPS = ("Light", "Medium", "Heavy", "Auth")

OUTCOMES = ("delivered", "delivery_failed", "sending_failed", "no_receipt")


def require_one_of(name: str, value: object, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming ``name`` and the choices unless ``value`` is one of them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}")


def _default_rate_limits() -> dict[str, int]:
    return {"Light": 50, "Medium": 40, "Heavy": 10, "Auth": 5}


@dataclass
class EmulatorConfig:
    """All knobs, with RingCentral's defaults where they are known.

    Times are seconds on the emulator clock (see ``Emulator.advance``), except ``webhook_timeout``
    and fault stalls, which are real seconds because they bound real network waits.
    """

    # OAuth
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 604800
    code_ttl: int = 60
    refresh_grace_after_use: float = 10.0
    refresh_grace_unused: float = 3600.0
    max_sessions_per_user: int = 5
    consent_page: bool = True

    # Rate limits per (extension, app, group); the Auth group is keyed by client (+ user).
    rate_limits_enabled: bool = True
    rate_limits: dict[str, int] = field(default_factory=_default_rate_limits)
    rate_window: float = 60.0
    rate_penalty: float = 60.0

    # Message lifecycle: seconds after creation at which a recipient becomes Sent / final.
    sent_after: float = 1.0
    delivered_after: float = 3.0
    default_outcome: str = "delivered"

    # Message sync: how far back an ISync looks before its token's syncTime (RingCentral
    # documents 5 s), and how long a token stays valid after it was issued.
    sync_overlap: float = 5.0
    sync_token_ttl: float = 86400.0

    # Request limits
    max_body_bytes: int = 10 * 1024 * 1024
    max_attachments: int = 10
    max_attachment_bytes: int = 1_500_000
    max_text_units: int = 1000
    max_recipients: int = 10
    batch_read_max: int = 50

    # High Volume SMS (a2p-sms): messages per batch request (developer guide: 10,000 texts per
    # request), request body (the spec's x-request-max-body-size 50m), and how fast a number's
    # batches are worked through (messages a second, emulator time).
    a2p_max_messages: int = 10_000
    a2p_max_body_bytes: int = 50 * 1024 * 1024
    a2p_messages_per_second: float = 1000.0

    # Webhooks
    webhook_timeout: float = 3.0
    webhook_max_response_bytes: int = 1024
    blacklist_after_failures: int = 3
    max_subscriptions_per_app: int = 30
    subscription_default_expires_in: int = 604800
    subscription_max_expires_in: int = 315360000
    require_https_webhooks: bool = False

    # Server
    tick_interval: float = 0.5
    public_base_url: str | None = None
    log_requests: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` when the combination of values cannot be emulated."""
        require_one_of("default_outcome", self.default_outcome, OUTCOMES)
        if self.sent_after < 0 or self.delivered_after < self.sent_after:
            raise ValueError("need 0 <= sent_after <= delivered_after")
        unknown = set(self.rate_limits) - set(RATE_LIMIT_GROUPS)
        if unknown:
            raise ValueError(f"unknown rate-limit groups: {sorted(unknown)}")
        for group, limit in self.rate_limits.items():
            if not isinstance(limit, int) or limit < 1:
                raise ValueError(f"rate limit for {group} must be a positive integer")
        for name in ("access_token_ttl", "refresh_token_ttl", "code_ttl", "batch_read_max"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.sync_overlap < 0 or self.sync_token_ttl <= 0:
            raise ValueError("need sync_overlap >= 0 and sync_token_ttl > 0")
        if self.a2p_max_messages < 1 or self.a2p_max_body_bytes < 1:
            raise ValueError("a2p_max_messages and a2p_max_body_bytes must be positive")
        if self.a2p_messages_per_second <= 0:
            raise ValueError("a2p_messages_per_second must be positive")
        if self.max_sessions_per_user < 1:
            raise ValueError("max_sessions_per_user must be at least 1")

    def updated(self, changes: dict[str, Any]) -> EmulatorConfig:
        """A validated copy with ``changes`` applied; unknown names raise ``ValueError``.

        ``rate_limits`` is merged group by group so a caller can change one group.
        """
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        values = dataclasses.asdict(self)
        for name, value in changes.items():
            if name == "rate_limits":
                if not isinstance(value, dict):
                    raise ValueError("rate_limits must be an object of group -> limit")
                merged = dict(values["rate_limits"])
                merged.update(value)
                values["rate_limits"] = merged
            else:
                expected = type(values[name]) if values[name] is not None else None
                if expected is float and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                if expected is not None and not isinstance(value, expected):
                    raise ValueError(f"{name} must be {expected.__name__}")
                values[name] = value
        return EmulatorConfig(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
