"""Scheduled sends as people write and read them: a date and time in a time zone.

The browser sends the person's time zone (an IANA name) with the form; without one, or with one
that is not a zone, the team's time zone is used (messaging/consent/team_settings.py). The
moment is stored in UTC; pages show it back in the zone it was chosen in.

A local time can fail to name a moment: in a DST gap (02:30 on the night clocks go forward)
it does not exist, and `local_moment` refuses it rather than guess. In a DST overlap (01:30 on
the night clocks go back) the first of the two is taken, as clocks show it first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from messaging.consent.team_settings import settings_for, zone_of

INPUT_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")


class ScheduleInvalid(ValueError):
    """The date and time cannot be a schedule; the message says why, in the person's words."""


def zone_for(team, name: str | None) -> ZoneInfo:
    """The zone `name` sent by the browser, else the team's time zone."""
    name = (name or "").strip()
    if name and len(name) <= 64:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return zone_of(settings_for(team))


def local_moment(value: str | None, zone: ZoneInfo, *, now: datetime | None = None) -> datetime:
    """The aware moment (UTC) of the local date and time `value` ("2026-12-24T09:30") in
    `zone`; `ScheduleInvalid` for a time that is not a date, does not exist or has passed."""
    text = (value or "").strip()
    if not text:
        raise ScheduleInvalid("Choose the date and time to send it at.")
    naive = None
    for pattern in INPUT_FORMATS:
        try:
            naive = datetime.strptime(text[:19], pattern)
            break
        except ValueError:
            continue
    if naive is None:
        raise ScheduleInvalid(f"“{text[:40]}” is not a date and time. Use the date picker.")
    local = naive.replace(tzinfo=zone, fold=0)
    # A time in the gap does not survive the round trip through UTC (zoneinfo shifts it).
    back = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != naive:
        raise ScheduleInvalid(
            f"{naive:%H:%M} on {naive:%d %b %Y} does not exist in {zone.key}: the clocks skip it "
            "when they go forward. Choose another time."
        )
    return check_future(local.astimezone(UTC), zone, now=now)


def check_future(moment: datetime, zone: ZoneInfo, *, now: datetime | None = None) -> datetime:
    """`moment` itself, or `ScheduleInvalid` when it is not after now."""
    if timezone.is_naive(moment):
        raise ScheduleInvalid("The time to send at needs a time zone.")
    now = now or timezone.now()
    if moment <= now:
        raise ScheduleInvalid(
            f"{describe(moment, zone.key)} has passed. Choose a later time, or send it now."
        )
    return moment


def describe(moment: datetime | None, zone_name: str = "") -> str:
    """A moment as the person who chose it reads it: "Thu 24 Dec 2026, 09:30 (Europe/Paris)"."""
    if moment is None:
        return ""
    try:
        zone = ZoneInfo(zone_name) if zone_name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = moment.astimezone(zone)
    return f"{local:%a %d %b %Y, %H:%M} ({zone.key})"


def input_value(moment: datetime | None, zone_name: str = "") -> str:
    """A moment as a datetime-local input shows it, in `zone_name`."""
    if moment is None:
        return ""
    try:
        zone = ZoneInfo(zone_name) if zone_name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
