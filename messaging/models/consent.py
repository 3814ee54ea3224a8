"""Consent: who may be texted from which number, as one ledger for every source.

A `ConsentRecord` is the current state of one contact number towards one sender scope: a team
number (`from_number`, E.164) or every number (`"*"`), within one RingCentral account
(`account_id`) or within the whole team (`account_id` blank: a choice the team made itself, by
hand or by import, that holds whatever link sends). Every change appends a `ConsentChange`, so
the history says who or what opted a person out and when. messaging/consent/ writes and reads
them; nothing else does.
"""

from django.conf import settings
from django.db import models

from .teams import Team

EVERY_NUMBER = "*"


class ConsentState(models.TextChoices):
    OPTED_IN = "opted_in", "Opted in"
    OPTED_OUT = "opted_out", "Opted out"


class ConsentSource(models.TextChoices):
    RINGCENTRAL = "ringcentral", "RingCentral's consent list"
    DELIVERY_REPORT = "delivery_report", "Carrier or RingCentral refused a message (…-413)"
    KEYWORD = "keyword", "The contact texted a keyword (STOP, START, …)"
    MANUAL = "manual", "Set by hand"
    IMPORT = "import", "Imported from a file"


class ConsentRecord(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="consent_records")
    account_id = models.CharField(
        "RingCentral account id",
        max_length=32,
        blank=True,
        help_text="Blank: the team's own choice, whichever RingCentral account sends.",
    )
    from_number = models.CharField(
        max_length=20,
        default=EVERY_NUMBER,
        help_text='A team number (E.164), or "*" for every one.',
    )
    contact_number = models.CharField(max_length=20, help_text="E.164.")
    state = models.CharField(max_length=10, choices=ConsentState.choices)
    source = models.CharField(max_length=20, choices=ConsentSource.choices)
    changed_at = models.DateTimeField(
        help_text="When the state last changed (RingCentral's time for its own records)."
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "account_id", "from_number", "contact_number"],
                name="consent_one_record_per_scope",
            )
        ]
        indexes = [models.Index(fields=["team", "contact_number"], name="consent_by_contact")]

    def __str__(self):
        return f"{self.contact_number} {self.get_state_display().lower()} ({self.from_number})"

    @property
    def opted_out(self) -> bool:
        return self.state == ConsentState.OPTED_OUT


class ConsentChange(models.Model):
    """One change of a `ConsentRecord`, kept for its history."""

    record = models.ForeignKey(ConsentRecord, on_delete=models.CASCADE, related_name="changes")
    state = models.CharField(max_length=10, choices=ConsentState.choices)
    source = models.CharField(max_length=20, choices=ConsentSource.choices)
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self):
        return f"{self.get_state_display()} by {self.get_source_display()}"


class TeamMessagingSettings(models.Model):
    """A team's sending manners: quiet hours for automated sends and the opt-out line.

    Quiet hours are a daily window (`quiet_start` to `quiet_end`, across midnight when the start
    is later than the end) in `time_zone` during which automated sends wait; a person's own
    message still goes, with a warning. The opt-out line is added to the first message from a
    team number to a contact. A team without a row has neither (messaging/consent/settings.py
    reads it with those defaults).
    """

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="messaging_settings")
    quiet_hours_enabled = models.BooleanField(default=False)
    quiet_start = models.TimeField(default="21:00")
    quiet_end = models.TimeField(default="08:00")
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="An IANA time zone (America/Chicago); blank: the portal's TIME_ZONE.",
    )
    opt_out_line_enabled = models.BooleanField(default=False)
    opt_out_line = models.CharField(max_length=80, default="Reply STOP to opt out")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = "team messaging settings"
        verbose_name_plural = "team messaging settings"

    def __str__(self):
        return f"Messaging settings of {self.team}"
