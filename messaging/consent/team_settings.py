"""A team's sending manners as the rest of the portal reads them (TeamMessagingSettings, or its
defaults for a team that never saved any): the opt-out line and the time zone."""

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

from messaging.models import OutboundMessage, TeamMessagingSettings

# Between the text and the opt-out line.
SEPARATOR = "\n\n"


def settings_for(team) -> TeamMessagingSettings:
    """The team's row, or an unsaved one with the defaults (nothing switched on)."""
    team_id = getattr(team, "pk", team)
    found = TeamMessagingSettings.objects.filter(team_id=team_id).first()
    return found or TeamMessagingSettings(team_id=team_id)


def zone_of(team_settings: TeamMessagingSettings) -> ZoneInfo:
    for name in (team_settings.time_zone, settings.TIME_ZONE, "UTC"):
        if not name:
            continue
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def opt_out_suffix(team) -> str:
    """What is appended to a first message ("" when the team has no opt-out line)."""
    found = team if isinstance(team, TeamMessagingSettings) else settings_for(team)
    line = (found.opt_out_line or "").strip()
    return f"{SEPARATOR}{line}" if found.opt_out_line_enabled and line else ""


def first_contacts(team, from_number: str, numbers) -> set[str]:
    """The numbers among `numbers` that no message of the team from `from_number` went to yet
    (one query)."""
    wanted = set(numbers)
    if not wanted:
        return set()
    texted = set(
        OutboundMessage.objects.filter(
            team_id=getattr(team, "pk", team),
            from_number=from_number,
            recipients__phone_number__in=wanted,
        ).values_list("recipients__phone_number", flat=True)
    )
    return wanted - texted
