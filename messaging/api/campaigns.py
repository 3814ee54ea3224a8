"""Campaigns through the API: the request's fields handed to the campaign room's services
(messaging/campaigns/: `creation.create`, `running.start/pause/resume/cancel`, `preflight`,
`report`), and what the answers show. Every rule stays in that room; this module only names
fields the way the API does and reads its numbers back."""

from __future__ import annotations

from datetime import UTC

from django.core.exceptions import SuspiciousFileOperation
from django.utils import timezone
from django.utils.text import get_valid_filename
from drf_spectacular.utils import extend_schema_field
from rest_framework import renderers, serializers

from messaging.api.problems import Problem
from messaging.api.serializers import Strict, Text
from messaging.campaigns import creation, preflight, report, running
from messaging.campaigns.forms import parse_start
from messaging.contacts import exporting
from messaging.models import (
    Campaign,
    CampaignStatus,
    MissingFieldPolicy,
    RecipientSource,
    RecipientState,
    SkipKind,
)
from messaging.ringcentral import limits

MAX_SENDERS = 20
MAX_ID = 2**63 - 1

# --- Input ------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "maxLength": 40},
            {
                "type": "array",
                "items": {"type": "string", "maxLength": 40},
                "minItems": 1,
                "maxItems": MAX_SENDERS,
            },
        ],
        "description": "The number (E.164) or numbers to send from; several share the work.",
    }
)
class SenderNumbers(serializers.Field):
    """One number as text, or a list of them (a form repeats the part)."""

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist") and self.field_name in dictionary:
            return dictionary.getlist(self.field_name)
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        values = [data] if isinstance(data, str) else data
        if not isinstance(values, list) or not values or len(values) > MAX_SENDERS:
            raise serializers.ValidationError(
                f"Give a number, or a list of 1 to {MAX_SENDERS} numbers."
            )
        if not all(isinstance(v, str) and v and len(v) <= 40 and "\x00" not in v for v in values):
            raise serializers.ValidationError("Each number is text, such as +16505550100.")
        return values

    def to_representation(self, value):
        return value


class Identifier(serializers.IntegerField):
    """A JSON integer (not text, not true/false) that fits a database id; digits in a form."""

    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)

    def to_internal_value(self, data):
        # A form's parts are all text: there, digits are an id too.
        in_a_form = hasattr(getattr(self.root, "initial_data", None), "getlist")
        if in_a_form and isinstance(data, str) and data.isascii() and data.isdigit():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class CampaignCreateSerializer(Strict):
    name = Text(max_length=120)
    from_ = SenderNumbers()
    text = Text(required=False, allow_blank=True, default="", max_length=10_000)
    missing_policy = serializers.ChoiceField(
        choices=MissingFieldPolicy.choices,
        required=False,
        default=MissingFieldPolicy.SKIP,
        help_text="A recipient without a value for a merge field: skipped, or the fallback text.",
    )
    fallback_text = Text(required=False, allow_blank=True, default="", max_length=100)
    tag = Text(
        required=False, max_length=50, help_text="Send to the team's contacts with this tag."
    )
    contact_ids = serializers.ListField(
        child=Identifier(),
        required=False,
        min_length=1,
        max_length=100_000,
        help_text="Send to these contacts (every number of each).",
    )
    start_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Null: it starts when started. A moment in the future (ISO 8601; without an "
        "offset, UTC): once started, it sends nothing before then.",
    )

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword; the JSON field keeps its plain name.
        fields["from"] = fields.pop("from_")
        return fields

    def validate_start_at(self, value):
        if value is None:
            return None
        start, problem = parse_start(timezone.make_naive(value, UTC), UTC)
        if problem:
            raise serializers.ValidationError(problem)
        return start

    def validate(self, attrs):
        given = [name for name in ("tag", "contact_ids", "file") if attrs.get(name)]
        if not given:
            raise serializers.ValidationError(
                {"recipients": ["Choose the recipients: a `tag`, `contact_ids`, or a `file`."]}
            )
        if len(given) > 1:
            raise serializers.ValidationError(
                {name: ["Choose one source of recipients."] for name in given}
            )
        return attrs


class CampaignCreateMultipartSerializer(CampaignCreateSerializer):
    file = serializers.FileField(
        required=False,
        help_text="A CSV or Excel (.xlsx) list with a header row: a column of numbers headed "
        "Phone, Mobile or Number; every column is a merge field ({appointment_time}).",
    )
    attachments = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        max_length=limits.MAX_ATTACHMENTS + 40,
        help_text="Files every recipient gets (MMS).",
    )


def create(membership, data: dict) -> Campaign:
    """The campaign the request asks for (not started); a refusal is a 422 by field."""
    if data.get("file"):
        source = RecipientSource.FILE
    elif data.get("tag"):
        source = RecipientSource.TAG
    else:
        source = RecipientSource.SELECTION
    ask = creation.Request(
        name=data["name"],
        sender_ids=data["from"],
        text=data.get("text", ""),
        missing_policy=data.get("missing_policy", MissingFieldPolicy.SKIP),
        fallback_text=data.get("fallback_text", ""),
        source=source,
        tag=data.get("tag", ""),
        contact_ids=data.get("contact_ids", ()),
        upload=data.get("file"),
        attachments=data.get("attachments", ()),
        start_at=data.get("start_at"),
    )
    try:
        return creation.create(membership, ask)
    except creation.CampaignInvalid as invalid:
        where = {"senders": "from", "recipients": {"file": "file", "tag": "tag"}.get(source)}
        errors: dict[str, list[str]] = {}
        for name, found in invalid.errors.items():
            target = where.get(name, name) or "contact_ids"
            errors.setdefault(target, []).extend(found)
        summary = "; ".join(f"{name}: {found[0]}" for name, found in errors.items())
        raise Problem(
            422,
            summary or "The campaign cannot be created.",
            code="campaign-refused",
            title="The campaign cannot be created",
            errors=errors,
        ) from None


ACTIONS = {
    "start": running.start,
    "pause": running.pause,
    "resume": running.resume,
    "cancel": running.cancel,
}


def act(campaign: Campaign, action: str) -> None:
    """Start, pause, resume or cancel; a state that does not allow it is a 409 with the reason."""
    try:
        ACTIONS[action](campaign)
    except running.CampaignRefused as refused:
        raise Problem(409, str(refused), code="campaign-state", title="Not now") from None
    campaign.refresh_from_db()


# --- Output -----------------------------------------------------------------------------------


class CampaignBriefOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=CampaignStatus.choices)
    status_label = serializers.CharField(source="get_status_display")
    source = serializers.ChoiceField(choices=RecipientSource.choices)
    source_label = serializers.CharField(help_text="The tag's name or the file's name.")
    from_ = serializers.SerializerMethodField(method_name="get_senders")
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    start_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_senders(self, campaign) -> list[str]:
        return [n.phone_number for n in campaign.senders.all()]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_created_by(self, campaign) -> str | None:
        return campaign.created_by.email if campaign.created_by else None


class CampaignPageOut(serializers.Serializer):
    results = CampaignBriefOut(many=True)
    next = serializers.CharField(allow_null=True, help_text="The `cursor` of the next page.")


class PreflightOut(serializers.Serializer):
    total = serializers.IntegerField(help_text="Rows in the list.")
    to_send = serializers.IntegerField()
    skipped = serializers.DictField(
        child=serializers.IntegerField(), help_text=f"By reason: {', '.join(SkipKind.values)}."
    )
    segments = serializers.IntegerField(help_text="SMS segments in all.")
    per_minute = serializers.FloatField(help_text="Messages a minute the senders allow.")
    duration_seconds = serializers.IntegerField(allow_null=True)
    duration = serializers.CharField()


class ProgressOut(serializers.Serializer):
    total = serializers.IntegerField()
    skipped = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="Not handed to the outbox yet.")
    queued = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    failed = serializers.IntegerField()
    canceled = serializers.IntegerField()
    replied = serializers.IntegerField()
    percent = serializers.IntegerField()
    finished = serializers.BooleanField()
    eta_seconds = serializers.IntegerField(allow_null=True, help_text="Time left, while running.")
    eta = serializers.CharField()


class CampaignOut(CampaignBriefOut):
    text = serializers.CharField()
    missing_policy = serializers.ChoiceField(choices=MissingFieldPolicy.choices)
    fallback_text = serializers.CharField()
    fields = serializers.ListField(child=serializers.CharField(), help_text="A file's columns.")
    stop_reason = serializers.CharField()
    stop_fix = serializers.CharField()
    preflight = PreflightOut()
    progress = ProgressOut()


def detail(campaign: Campaign) -> dict:
    """The campaign with its pre-flight numbers and its progress (a few queries)."""
    summary = preflight.summary(campaign)
    campaign.preflight = {
        "total": summary.total,
        "to_send": summary.to_send,
        "skipped": summary.skipped,
        "segments": summary.segments,
        "per_minute": summary.per_minute,
        "duration_seconds": int(summary.duration.total_seconds()) if summary.duration else None,
        "duration": summary.duration_text,
    }
    campaign.progress = running.progress(campaign).as_json()
    return CampaignOut(campaign).data


class ReportRowOut(serializers.Serializer):
    row = serializers.IntegerField(source="position", help_text="Its place in the list.")
    number = serializers.CharField(source="phone_number")
    name = serializers.CharField()
    text = serializers.CharField()
    state = serializers.ChoiceField(choices=RecipientState.choices)
    skip_kind = serializers.CharField(help_text="Why it is skipped (empty when it is not).")
    result = serializers.CharField(help_text="As the report shows it: Delivered, Skipped: …")
    reason = serializers.CharField()
    fix = serializers.CharField(help_text="What to do.")
    message_id = serializers.IntegerField(allow_null=True, help_text="/api/v1/messages/<id>")
    sent_at = serializers.DateTimeField(allow_null=True)
    final_at = serializers.DateTimeField(allow_null=True)


class ReportPageOut(serializers.Serializer):
    results = ReportRowOut(many=True)
    next = serializers.CharField(allow_null=True, help_text="The `cursor` of the next page.")


def report_row(row) -> dict:
    result, reason, fix = report.result_of(row)
    message = row.message
    return {
        "position": row.position,
        "phone_number": row.phone_number,
        "name": row.name,
        "text": row.text,
        "state": row.state,
        "skip_kind": row.skip_kind,
        "result": result,
        "reason": reason,
        "fix": fix,
        "message_id": message.pk if message else None,
        "sent_at": message.sent_at if message else None,
        "final_at": message.final_at if message else None,
    }


class CsvRenderer(renderers.BaseRenderer):
    """Lets a report be asked for as CSV (`?format=csv`, `Accept: text/csv`). The CSV itself is
    streamed by the view; what reaches a renderer here is a problem document, kept as JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return renderers.JSONRenderer().render(data)


def report_csv_lines(campaign: Campaign):
    """The same CSV as the campaign's page gives."""
    return exporting.csv_lines(report.HEADER, report.report_rows(campaign))


def report_file_name(campaign: Campaign) -> str:
    try:
        stem = get_valid_filename(campaign.name)[:60]
    except SuspiciousFileOperation:  # a name such as ".." leaves nothing usable
        stem = ""
    return f"{stem or 'campaign'}-report.csv"
