"""What the API reads and writes. Input serializers refuse fields they do not know and values
of the wrong JSON type (a number where text is expected), so a typo never passes silently."""

from __future__ import annotations

from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from messaging.contacts import book
from messaging.contacts.forms import MAX_CUSTOM_FIELDS, MAX_NUMBERS, time_zone_problem
from messaging.contacts.numbers import BadNumber, to_e164
from messaging.models import MessageStatus, RecipientStatus
from messaging.outbox.folders import FOLDERS
from messaging.ringcentral import limits

# --- Input ------------------------------------------------------------------------------------


class Strict(serializers.Serializer):
    """Unknown fields are an error, not ignored."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field is not known here."] for name in unknown}
                )
        return super().to_internal_value(data)


class Text(serializers.CharField):
    """Text, and only text: JSON numbers, booleans and objects are refused."""

    default_error_messages = {"invalid": "Expected text."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            raise serializers.ValidationError("Remove the NUL character.")
        return super().to_internal_value(data)


class Flag(serializers.BooleanField):
    """true or false (and "true"/"false" in a form), not 1, "yes" or "on"."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.lower() in ("true", "false"):
            return data.lower() == "true"
        self.fail("invalid", input=data)


class MessageSendSerializer(Strict):
    from_ = Text(
        max_length=40, help_text="The number to send from (E.164), one of /api/v1/sender-numbers."
    )
    to = serializers.ListField(
        child=Text(max_length=40),
        min_length=1,
        max_length=1000,
        help_text="Recipients' numbers; `tag:<name>` sends to the contacts tagged so.",
    )
    text = Text(required=False, allow_blank=True, default="", max_length=10_000)
    group = Flag(required=False, default=False, help_text="One group message to everyone.")
    send_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Null sends now. A moment in the future (ISO 8601; without an offset it is "
        "read as UTC) schedules the messages: status `scheduled` until then, canceled by "
        "`POST /api/v1/messages/<id>/cancel`; quiet hours move it to their end.",
    )

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword; the JSON field keeps its plain name.
        fields["from"] = fields.pop("from_")
        return fields


class MessageSendMultipartSerializer(MessageSendSerializer):
    attachments = serializers.ListField(
        child=serializers.FileField(), required=False, max_length=limits.MAX_ATTACHMENTS + 40
    )


class ReplySerializer(Strict):
    text = Text(required=False, allow_blank=True, default="", max_length=10_000)


class ReplyMultipartSerializer(ReplySerializer):
    attachments = serializers.ListField(
        child=serializers.FileField(), required=False, max_length=limits.MAX_ATTACHMENTS + 40
    )


class NumberInSerializer(Strict):
    number = Text(max_length=40)
    label = Text(required=False, allow_blank=True, default="", max_length=40)

    def validate_number(self, value):
        try:
            return to_e164(value)
        except BadNumber as bad:
            raise serializers.ValidationError(str(bad)) from None


class ContactInSerializer(Strict):
    name = Text(required=False, allow_blank=True, max_length=200)
    company = Text(required=False, allow_blank=True, max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    notes = Text(required=False, allow_blank=True, max_length=10_000)
    time_zone = Text(required=False, allow_blank=True, max_length=64)
    custom_fields = serializers.DictField(
        child=Text(allow_blank=True, max_length=500), required=False
    )
    numbers = NumberInSerializer(many=True, required=False, max_length=MAX_NUMBERS)
    tags = serializers.ListField(child=Text(max_length=50), required=False, max_length=100)

    def validate_time_zone(self, value):
        problem = time_zone_problem(value.strip())
        if problem:
            raise serializers.ValidationError(problem)
        return value.strip()

    def validate_custom_fields(self, value):
        if len(value) > MAX_CUSTOM_FIELDS:
            raise serializers.ValidationError(f"At most {MAX_CUSTOM_FIELDS} custom fields.")
        cleaned = {}
        for key, text in value.items():
            name = " ".join(str(key).split())[:50]
            if not name or "\x00" in name:
                raise serializers.ValidationError("Every custom field needs a name.")
            cleaned[name] = text.strip()
        return cleaned

    def validate_tags(self, value):
        return book.split_tags(",".join(value))

    def validate(self, attrs):
        numbers = attrs.get("numbers")
        if numbers is not None:
            # A partial change (PATCH) still replaces the numbers whole: each needs its number.
            if any("number" not in entry for entry in numbers):
                raise serializers.ValidationError({"numbers": ["Give each entry its number."]})
            seen, unique = set(), []
            for entry in numbers:
                if entry["number"] not in seen:
                    seen.add(entry["number"])
                    unique.append(entry)
            attrs["numbers"] = unique
        return attrs


class ImportInSerializer(Strict):
    file = serializers.FileField(help_text="A CSV or Excel (.xlsx) file with a header row.")
    mapping = serializers.ListField(
        child=serializers.CharField(allow_blank=True, max_length=20),
        required=False,
        help_text="What each column holds, in order (name, number, tags, …; empty: ignore). "
        "Left out: guessed from the headers.",
    )


# --- Output -----------------------------------------------------------------------------------


class RecipientOut(serializers.Serializer):
    number = serializers.CharField(source="phone_number")
    status = serializers.ChoiceField(choices=RecipientStatus.choices)
    error_code = serializers.CharField()
    reason = serializers.CharField(source="error_reason")
    fix = serializers.CharField(source="error_fix")


class AttachmentOut(serializers.Serializer):
    name = serializers.CharField(source="original_name")
    content_type = serializers.CharField()
    size = serializers.IntegerField()


class MessageOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=MessageStatus.choices)
    status_label = serializers.CharField(source="get_status_display")
    from_ = serializers.CharField(source="from_number")
    to = serializers.SerializerMethodField()
    group = serializers.BooleanField(source="is_group")
    text = serializers.CharField()
    recipients = RecipientOut(many=True)
    attachments = AttachmentOut(many=True)
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    final_at = serializers.DateTimeField(allow_null=True)
    error_code = serializers.CharField()
    reason = serializers.CharField(source="error_reason")
    fix = serializers.CharField(source="error_fix")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_to(self, message) -> list[str]:
        return [r.phone_number for r in message.recipients.all()]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_created_by(self, message) -> str | None:
        return message.created_by.email if message.created_by else None


class MessagesCreatedOut(serializers.Serializer):
    messages = MessageOut(many=True)


class MessagePageOut(serializers.Serializer):
    results = MessageOut(many=True)
    next = serializers.CharField(allow_null=True, help_text="The `cursor` of the next page.")


class SenderNumberOut(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(source="phone_number")
    label = serializers.CharField()
    can_mms = serializers.BooleanField()
    is_toll_free = serializers.BooleanField()


class SenderNumberListOut(serializers.Serializer):
    results = SenderNumberOut(many=True)


class ConversationOut(serializers.Serializer):
    id = serializers.IntegerField()
    team_number = serializers.CharField()
    contacts = serializers.ListField(child=serializers.CharField(), source="contact_numbers")
    group = serializers.BooleanField(source="is_group")
    state = serializers.CharField()
    assignee = serializers.SerializerMethodField()
    last_message_at = serializers.DateTimeField(allow_null=True)
    last_preview = serializers.CharField()
    unread = serializers.IntegerField(required=False)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_assignee(self, conversation) -> str | None:
        return conversation.assignee.email if conversation.assignee_id else None


class ConversationPageOut(serializers.Serializer):
    results = ConversationOut(many=True)
    next = serializers.CharField(allow_null=True)


class ConversationMessageOut(serializers.Serializer):
    id = serializers.IntegerField()
    direction = serializers.CharField()
    from_ = serializers.CharField(source="from_number")
    to = serializers.ListField(child=serializers.CharField(), source="to_numbers")
    text = serializers.CharField()
    at = serializers.DateTimeField()
    files = serializers.IntegerField(source="file_count")
    message_id = serializers.IntegerField(
        source="outbound_id", allow_null=True, help_text="The sent message (/api/v1/messages/…)."
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class ConversationMessagePageOut(serializers.Serializer):
    results = ConversationMessageOut(many=True)
    next = serializers.CharField(allow_null=True)


class NumberOut(serializers.Serializer):
    number = serializers.CharField()
    label = serializers.CharField()


class ContactOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    company = serializers.CharField()
    email = serializers.CharField()
    notes = serializers.CharField()
    time_zone = serializers.CharField()
    custom_fields = serializers.DictField(child=serializers.CharField())
    numbers = NumberOut(many=True)
    tags = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, contact) -> list[str]:
        return [tag.name for tag in contact.tags.all()]


class ContactPageOut(serializers.Serializer):
    results = ContactOut(many=True)
    next = serializers.CharField(allow_null=True)


class ImportOut(serializers.Serializer):
    id = serializers.IntegerField()
    file_name = serializers.CharField()
    status = serializers.CharField()
    headers = serializers.ListField(child=serializers.CharField())
    mapping = serializers.ListField(child=serializers.CharField(allow_blank=True))
    position = serializers.IntegerField()
    total_rows = serializers.IntegerField(allow_null=True)
    created = serializers.IntegerField(source="created_count")
    updated = serializers.IntegerField(source="updated_count")
    merged = serializers.IntegerField(source="merged_count")
    refused = serializers.IntegerField(source="refused_count")
    opted_out = serializers.IntegerField(source="opted_out_count")
    failure = serializers.CharField()
    finished = serializers.BooleanField()


FOLDER_KEYS = [folder.key for folder in FOLDERS]
