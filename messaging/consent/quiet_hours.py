"""Quiet hours: a team's daily window in which automated sends wait.

`window_for(team, number)` is the one place that decides which window applies to a contact:
the team's own window, in the contact's time zone when the address book knows it, else in the
team's time zone. Automated senders (scheduled messages,
campaigns) ask `next_allowed` before releasing a message; a person's own message goes anyway,
and compose shows `warning`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from messaging.consent.team_settings import settings_for, zone_of
from messaging.models import ContactNumber


@dataclass(frozen=True)
class Window:
    start: time
    end: time
    zone: ZoneInfo

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight

    def ends_after(self, moment: datetime) -> datetime:
        """The end of the window that holds `moment` (only meaningful when it does)."""
        local = moment.astimezone(self.zone)
        end = datetime.combine(local.date(), self.end, tzinfo=self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=self.zone)
        return end

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M} {self.zone.key}"


def window_for(team, number: str, *, team_settings=None, zones=None) -> Window | None:
    """The quiet hours that apply to texting `number` from `team`, or None when it has none.
    `team_settings` and `zones` (`contact_zones`): what the caller has read already for many
    numbers."""
    found = team_settings or settings_for(team)
    if not found.quiet_hours_enabled:
        return None
    if zones is None:
        zones = contact_zones(team, [number])
    zone = zones.get(number) or zone_of(found)
    return Window(_as_time(found.quiet_start), _as_time(found.quiet_end), zone)


def contact_zones(team, numbers) -> dict[str, ZoneInfo]:
    """The time zone of each of `numbers` whose contact has a valid one, in one query."""
    zones = {}
    rows = ContactNumber.objects.filter(
        team_id=getattr(team, "pk", team), number__in=list(numbers)
    ).exclude(contact__time_zone="")
    for number, name in rows.values_list("number", "contact__time_zone"):
        try:
            zones[number] = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return zones


def inside(team, number: str, at: datetime | None = None) -> bool:
    window = window_for(team, number)
    return window is not None and window.contains(at or timezone.now())


def next_allowed(team, number: str, at: datetime | None = None) -> datetime:
    """When an automated send to `number` may go: `at` itself outside quiet hours, else the
    window's end."""
    at = at or timezone.now()
    window = window_for(team, number)
    if window is None or not window.contains(at):
        return at
    return window.ends_after(at)


def warning(team, numbers, at: datetime | None = None) -> str:
    """What a person sending now is told when it is quiet hours for some of `numbers`."""
    at = at or timezone.now()
    found = settings_for(team)
    if not found.quiet_hours_enabled:
        return ""
    numbers = list(numbers)
    zones = contact_zones(team, numbers)
    windows = [window_for(team, n, team_settings=found, zones=zones) for n in numbers]
    quiet = [w for w in windows if w is not None and w.contains(at)]
    if not quiet:
        return ""
    window = quiet[0]
    return (
        f"Sent during the team's quiet hours ({window.describe()}). Automated messages wait "
        "until they end; messages you write yourself go at once."
    )


def _as_time(value) -> time:
    if isinstance(value, time):
        return value
    return time.fromisoformat(str(value))
