"""The REST API's resources under /api/v1/ (URLs in messaging/urls.py).

    GET  POST   messages                      list (filters, cursor) / send (JSON or multipart)
    GET         messages/<id>                 one message with its recipients' statuses
    POST        messages/<id>/cancel          cancel a message no worker has picked up yet
    GET         sender-numbers                the numbers the key may send from
    GET         conversations                 the inbox (filters, cursor)
    GET         conversations/<id>            one conversation
    GET         conversations/<id>/messages   its messages, newest first (cursor)
    POST        conversations/<id>/replies    reply (JSON or multipart)
    GET  POST   contacts                      the address book / a new contact
    GET PATCH DELETE contacts/<id>            one contact
    POST        contacts/imports              import a CSV or Excel file
    GET         contacts/imports/<id>         the import's progress and results

Each view calls the room service the matching page calls; objects are looked up inside the
team the request acts in, so another team's id is a 404.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Prefetch, prefetch_related_objects
from django.http import Http404
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from messaging.api import idempotency, messages, paging
from messaging.api import serializers as s
from messaging.api.auth import membership_of, require
from messaging.api.problems import Problem
from messaging.compose.senders import sender_numbers, sender_refusal
from messaging.contacts import book, importing, tasks
from messaging.contacts.numbers import BadNumber, to_e164
from messaging.core.addresses import origin_of
from messaging.inbox import listing, reply
from messaging.models import (
    Attachment,
    Contact,
    Conversation,
    ConversationMessage,
    ImportJob,
    MessageStatus,
    OutboundMessage,
    Recipient,
    Role,
)
from messaging.outbox import states
from messaging.outbox.folders import folder_q, get_folder, search_q, stalled_connection_ids
from messaging.outbox.paging import BadCursor, keyset_page

# Room for the multipart framing around the files.
FORM_OVERHEAD = 64 * 1024

CURSOR = OpenApiParameter("cursor", str, description="The `next` value of the previous page.")


class ApiView(APIView):
    """Reads no body larger than it accepts: the Content-Length is checked before parsing."""

    def max_body(self, request) -> int:
        if request.content_type.startswith("multipart/form-data"):
            return settings.COMPOSE_MAX_REQUEST_BYTES + FORM_OVERHEAD
        return settings.API_MAX_JSON_BYTES

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        limit = self.max_body(request)
        if size > limit:
            raise Problem(
                413, f"The request body is {size:,} bytes; this address reads at most {limit:,}."
            )

    @property
    def membership(self):
        return membership_of(self.request)

    def query(self, name: str, max_length: int = 100) -> str:
        value = self.request.query_params.get(name, "")
        if len(value) > max_length or "\x00" in value:
            raise Problem(
                400, f"`{name}` is too long or not valid.", errors={name: ["Not a valid value."]}
            )
        return value.strip()


def _message_queryset(team):
    return (
        team.messages.select_related("created_by")
        .prefetch_related(
            Prefetch("recipients", queryset=Recipient.objects.order_by("pk")),
            Prefetch("attachments", queryset=Attachment.objects.order_by("position", "pk")),
        )
        .order_by("-created_at", "-pk")
    )


def _number_param(view, name: str) -> str | None:
    value = view.query(name, 40)
    if not value:
        return None
    try:
        return to_e164(value)
    except BadNumber as bad:
        raise Problem(400, str(bad), code="validation", errors={name: [str(bad)]}) from None


def _created_messages(created) -> list:
    """The messages just queued as the answer shows them (their author is on them already)."""
    prefetch_related_objects(
        created,
        Prefetch("recipients", queryset=Recipient.objects.order_by("pk")),
        Prefetch("attachments", queryset=Attachment.objects.order_by("position", "pk")),
    )
    return s.MessageOut(sorted(created, key=lambda m: m.pk), many=True).data


def _created(response_data) -> Response:
    return Response(response_data, status=status.HTTP_201_CREATED)


# --- Messages ------------------------------------------------------------------------------------


class MessageList(ApiView):
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="messages_list",
        parameters=[
            OpenApiParameter("status", str, enum=[v for v, _ in MessageStatus.choices]),
            OpenApiParameter("folder", str, enum=s.FOLDER_KEYS, description="As the outbox."),
            OpenApiParameter("from", str, description="Sent from this number."),
            OpenApiParameter("to", str, description="Sent to this number."),
            OpenApiParameter("search", str, description="Words of the text, or a number."),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="Created at or after."),
            CURSOR,
        ],
        responses=s.MessagePageOut,
    )
    def get(self, request):
        team = self.membership.team
        queryset = _message_queryset(team)
        status_value = self.query("status", 20)
        if status_value:
            if status_value not in MessageStatus.values:
                raise Problem(400, "Unknown status.", errors={"status": ["Not a status."]})
            queryset = queryset.filter(status=status_value)
        folder_key = self.query("folder", 20)
        if folder_key:
            folder = get_folder(folder_key)
            if folder is None:
                raise Problem(400, "Unknown folder.", errors={"folder": ["Not a folder."]})
            queryset = queryset.filter(folder_q(folder, stalled_connection_ids(team.pk)))
        sender = _number_param(self, "from")
        if sender:
            queryset = queryset.filter(from_number=sender)
        recipient = _number_param(self, "to")
        if recipient:
            queryset = queryset.filter(
                pk__in=Recipient.objects.filter(phone_number=recipient).values("message_id")
            )
        search = search_q(self.query("search"))
        if search is not None:
            queryset = queryset.filter(search)
        since = self.query("since", 40)
        if since:
            try:
                moment = parse_datetime(since)
            except ValueError:
                moment = None
            if moment is None or moment.tzinfo is None:
                raise Problem(
                    400,
                    "`since` must be an ISO 8601 time with its offset.",
                    errors={"since": ["Such as 2026-12-01T09:00:00Z."]},
                )
            queryset = queryset.filter(created_at__gte=moment)
        try:
            page = keyset_page(queryset, after=self.query("cursor", 60) or None)
        except (BadCursor, OverflowError):
            raise paging.bad_cursor() from None
        return Response({"results": s.MessageOut(page.rows, many=True).data, "next": page.older})

    @extend_schema(
        operation_id="messages_send",
        request={
            "application/json": s.MessageSendSerializer,
            "multipart/form-data": s.MessageSendMultipartSerializer,
        },
        parameters=[
            OpenApiParameter(
                idempotency.HEADER, str, OpenApiParameter.HEADER, description="Send once."
            )
        ],
        responses={201: s.MessagesCreatedOut},
    )
    def post(self, request):
        membership = self.membership

        def work():
            multipart = request.content_type.startswith("multipart/form-data")
            serializer_class = (
                s.MessageSendMultipartSerializer if multipart else s.MessageSendSerializer
            )
            serializer = serializer_class(data=request.data)
            serializer.is_valid(raise_exception=True)
            require(membership, Role.SENDER, "Sending")
            uploads = request.FILES.getlist("attachments") if multipart else []
            created = messages.send(
                membership, serializer.validated_data, uploads, origin=origin_of(request)
            )
            return _created({"messages": _created_messages(created)})

        return idempotency.run_once(request, membership, work)


def _message(team, pk) -> OutboundMessage:
    message = _message_queryset(team).filter(pk=pk).first()
    if message is None:
        raise Http404
    return message


class MessageDetail(ApiView):
    @extend_schema(operation_id="messages_read", responses=s.MessageOut)
    def get(self, request, pk):
        return Response(s.MessageOut(_message(self.membership.team, pk)).data)


class MessageCancel(ApiView):
    @extend_schema(operation_id="messages_cancel", request=None, responses=s.MessageOut)
    def post(self, request, pk):
        membership = self.membership
        message = _message(membership.team, pk)
        require(membership, Role.SENDER, "Canceling")
        if not states.cancel(message):
            now = MessageStatus(states.current_status(message.pk))
            if now in (MessageStatus.SENDING, MessageStatus.UNKNOWN):
                detail = (
                    "Too late to cancel: the message is already being handed to RingCentral, "
                    "so it may be on its way."
                )
            else:
                detail = (
                    f"This message cannot be canceled: it is {now.label.lower()}. Only messages "
                    "still waiting to be sent can be canceled."
                )
            raise Problem(409, detail, code="not-cancelable")
        return Response(s.MessageOut(_message(membership.team, pk)).data)


# --- Sender numbers ------------------------------------------------------------------------------


class SenderNumberList(ApiView):
    @extend_schema(operation_id="sender_numbers_list", responses=s.SenderNumberListOut)
    def get(self, request):
        membership = self.membership
        numbers = [
            n
            for n in sender_numbers(membership.user, membership.team)
            if sender_refusal(n, with_files=False) is None
        ]
        if not membership.can(Role.SENDER):
            numbers = []
        return Response({"results": s.SenderNumberOut(numbers, many=True).data})


# --- Conversations -------------------------------------------------------------------------------


def _conversation(membership, pk) -> Conversation:
    found = (
        listing.with_unread(Conversation.objects.filter(team=membership.team), membership.user)
        .select_related("assignee")
        .filter(pk=pk)
        .first()
    )
    if found is None:
        raise Http404
    return found


class ConversationList(ApiView):
    @extend_schema(
        operation_id="conversations_list",
        parameters=[
            OpenApiParameter(
                "filter", str, enum=[f.key for f in listing.FILTERS], description="Default: all."
            ),
            OpenApiParameter("search", str, description="A number, a contact's name, or words."),
            CURSOR,
        ],
        responses=s.ConversationPageOut,
    )
    def get(self, request):
        filter_key = self.query("filter", 20) or "all"
        if filter_key not in listing.FILTER_KEYS:
            raise Problem(400, "Unknown filter.", errors={"filter": ["Not a filter."]})
        queryset = listing.conversations(
            self.membership, filter_key=filter_key, search=self.query("search")
        )
        try:
            rows, older = listing.page(queryset, after=self.query("cursor", 60) or None)
        except listing.BadCursor:
            raise paging.bad_cursor() from None
        return Response({"results": s.ConversationOut(rows, many=True).data, "next": older})


class ConversationDetail(ApiView):
    @extend_schema(operation_id="conversations_read", responses=s.ConversationOut)
    def get(self, request, pk):
        return Response(s.ConversationOut(_conversation(self.membership, pk)).data)


class ConversationMessages(ApiView):
    PAGE_SIZE = 100

    @extend_schema(
        operation_id="conversations_messages",
        parameters=[CURSOR],
        responses=s.ConversationMessagePageOut,
    )
    def get(self, request, pk):
        conversation = _conversation(self.membership, pk)
        queryset = ConversationMessage.objects.filter(conversation=conversation).order_by("-pk")
        cursor = self.query("cursor", 30)
        if cursor:
            queryset = queryset.filter(pk__lt=paging.decode_id_cursor(cursor))
        rows = list(queryset[: self.PAGE_SIZE + 1])
        more = len(rows) > self.PAGE_SIZE
        rows = rows[: self.PAGE_SIZE]
        return Response(
            {
                "results": s.ConversationMessageOut(rows, many=True).data,
                "next": str(rows[-1].pk) if more else None,
            }
        )


class ConversationReplies(ApiView):
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="conversations_reply",
        request={
            "application/json": s.ReplySerializer,
            "multipart/form-data": s.ReplyMultipartSerializer,
        },
        parameters=[
            OpenApiParameter(
                idempotency.HEADER, str, OpenApiParameter.HEADER, description="Reply once."
            )
        ],
        responses={201: s.MessagesCreatedOut},
    )
    def post(self, request, pk):
        membership = self.membership
        conversation = _conversation(membership, pk)

        def work():
            multipart = request.content_type.startswith("multipart/form-data")
            serializer_class = s.ReplyMultipartSerializer if multipart else s.ReplySerializer
            serializer = serializer_class(data=request.data)
            serializer.is_valid(raise_exception=True)
            require(membership, Role.SENDER, "Replying")
            created = reply.send_reply(
                membership,
                conversation,
                text=serializer.validated_data.get("text", ""),
                uploads=request.FILES.getlist("attachments") if multipart else [],
                origin=origin_of(request),
            )
            return _created({"messages": _created_messages(created)})

        return idempotency.run_once(request, membership, work)


# --- Contacts ------------------------------------------------------------------------------------


def _contact_queryset(team):
    return book.contacts(team)


def _contact(team, pk) -> Contact:
    found = _contact_queryset(team).filter(pk=pk).first()
    if found is None:
        raise Http404
    return found


def _refused(refused: book.ContactRefused) -> Problem:
    return Problem(
        422,
        str(refused),
        code="contact-refused",
        title="The contact cannot be saved",
        errors=refused.errors,
    )


def _save_contact(team, contact, data: dict) -> Contact:
    fields = {
        name: data[name]
        for name in ("name", "company", "email", "notes", "time_zone", "custom_fields")
        if name in data
    }
    name = fields.get("name", contact.name if contact else "").strip()
    company = fields.get("company", contact.company if contact else "").strip()
    if not name and not company:
        raise Problem(
            400, "Give a name or a company.", errors={"name": ["Give a name or a company."]}
        )
    for key in ("name", "company"):
        if key in fields:
            fields[key] = fields[key].strip()
    if "numbers" in data:
        numbers = [
            (n["number"], " ".join(n.get("label", "").split())[:40]) for n in data["numbers"]
        ]
    elif contact is not None:
        numbers = [(n.number, n.label) for n in contact.numbers.all()]
    else:
        numbers = []
    if not numbers:
        raise Problem(400, "Give at least one number.", errors={"numbers": ["Give a number."]})
    if "tags" in data:
        tag_names = data["tags"]
    elif contact is not None:
        tag_names = [t.name for t in contact.tags.all()]
    else:
        tag_names = []
    try:
        saved = book.save(team, contact, fields=fields, numbers=numbers, tag_names=tag_names)
    except book.ContactRefused as refused:
        raise _refused(refused) from None
    return _contact(team, saved.pk)


class ContactList(ApiView):
    @extend_schema(
        operation_id="contacts_list",
        parameters=[
            OpenApiParameter("search", str, description="A name, company, email or number."),
            OpenApiParameter("tag", str, description="Only contacts with this tag."),
            CURSOR,
        ],
        responses=s.ContactPageOut,
    )
    def get(self, request):
        team = self.membership.team
        queryset = book.contacts(team, search=self.query("search"), tag=self.query("tag", 50))
        cursor = self.query("cursor", 400)
        after = paging.decode_name_cursor(cursor) if cursor else None
        rows, more = book.page(queryset, after)
        return Response(
            {
                "results": s.ContactOut(rows, many=True).data,
                "next": paging.encode_name_cursor(rows[-1].name, rows[-1].pk) if more else None,
            }
        )

    @extend_schema(
        operation_id="contacts_create", request=s.ContactInSerializer, responses={201: s.ContactOut}
    )
    def post(self, request):
        membership = self.membership
        serializer = s.ContactInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        require(membership, Role.SENDER, "Adding contacts")
        contact = _save_contact(membership.team, None, serializer.validated_data)
        return _created(s.ContactOut(contact).data)


class ContactDetail(ApiView):
    @extend_schema(operation_id="contacts_read", responses=s.ContactOut)
    def get(self, request, pk):
        return Response(s.ContactOut(_contact(self.membership.team, pk)).data)

    @extend_schema(
        operation_id="contacts_update", request=s.ContactInSerializer, responses=s.ContactOut
    )
    def patch(self, request, pk):
        membership = self.membership
        contact = _contact(membership.team, pk)
        serializer = s.ContactInSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        require(membership, Role.SENDER, "Changing contacts")
        contact = _save_contact(membership.team, contact, serializer.validated_data)
        return Response(s.ContactOut(contact).data)

    @extend_schema(operation_id="contacts_delete", responses={204: None})
    def delete(self, request, pk):
        membership = self.membership
        contact = _contact(membership.team, pk)
        require(membership, Role.ADMIN, "Deleting contacts")
        book.delete(contact)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Contact imports -----------------------------------------------------------------------------


class ImportCreate(ApiView):
    parser_classes = [MultiPartParser]

    def max_body(self, request) -> int:
        return settings.CONTACTS_IMPORT_MAX_BYTES + FORM_OVERHEAD

    @extend_schema(
        operation_id="contacts_import",
        request={"multipart/form-data": s.ImportInSerializer},
        responses={201: s.ImportOut},
    )
    def post(self, request):
        membership = self.membership
        require(membership, Role.ADMIN, "Importing contacts")
        serializer = s.ImportInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        try:
            job = importing.receive(membership, upload)
        except importing.ImportRefused as refused:
            code = 413 if upload.size > settings.CONTACTS_IMPORT_MAX_BYTES else 422
            raise Problem(
                code, str(refused), code="import-refused", errors={"file": [str(refused)]}
            ) from None
        mapping = serializer.validated_data.get("mapping") or job.mapping
        try:
            importing.start(job, list(mapping))
        except importing.ImportRefused as refused:
            # Nothing half-made: the page keeps an upload to choose its columns; the API does not.
            default_storage.delete(job.stored_name)
            job.delete()
            raise Problem(
                422, str(refused), code="import-refused", errors={"mapping": [str(refused)]}
            ) from None
        tasks.import_soon(job.pk)
        job.refresh_from_db()
        return _created(s.ImportOut(job).data)


class ImportDetail(ApiView):
    @extend_schema(operation_id="contacts_import_read", responses=s.ImportOut)
    def get(self, request, pk):
        membership = self.membership
        job = ImportJob.objects.filter(team=membership.team, pk=pk).first()
        if job is None:
            raise Http404
        require(membership, Role.ADMIN, "Reading imports")
        return Response(s.ImportOut(job).data)
