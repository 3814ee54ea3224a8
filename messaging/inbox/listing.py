"""What the inbox pages read: the conversation list (filters, search, unread counts, pages)
and a thread (messages and notes in order).

The list costs a fixed number of queries whatever the team's size: conversations are read with
the person's read state joined in (one row per conversation, `unread` computed by the
database), newest activity first, one page at a time by a keyset cursor on
(last_message_at, id), which stays cheap on the thousandth page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Exists, F, FilteredRelation, OuterRef, Prefetch, Q, Value
from django.db.models.functions import Coalesce

from messaging.contacts.book import numbers_matching
from messaging.models import (
    Attachment,
    Conversation,
    ConversationMessage,
    ConversationNote,
    ConversationState,
    Direction,
    InboxFile,
    Notification,
    Recipient,
)

PAGE_SIZE = 50
THREAD_PAGE = 200
MAX_SEARCH_LENGTH = 100
MAX_ID = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Filter:
    key: str
    label: str


FILTERS = (
    Filter("open", "Open"),
    Filter("unread", "Unread"),
    Filter("mine", "Assigned to me"),
    Filter("unassigned", "Unassigned"),
    Filter("closed", "Closed"),
    Filter("all", "All"),
)
FILTER_KEYS = {f.key for f in FILTERS}


class BadCursor(ValueError):
    """A page link that was edited or is not ours."""


def with_unread(queryset, user):
    """Conversations annotated with `unread`: received messages this person has not seen."""
    return queryset.annotate(
        my_read=FilteredRelation("reads", condition=Q(reads__user=user)),
    ).annotate(unread=F("inbound_count") - Coalesce(F("my_read__seen_count"), Value(0)))


def conversations(membership, *, filter_key: str = "open", search: str = ""):
    user, team = membership.user, membership.team
    queryset = with_unread(
        Conversation.objects.filter(team=team, last_message_at__isnull=False), user
    ).select_related("assignee")
    if filter_key == "open":
        queryset = queryset.filter(state=ConversationState.OPEN)
    elif filter_key == "closed":
        queryset = queryset.filter(state=ConversationState.CLOSED)
    elif filter_key == "unread":
        queryset = queryset.filter(unread__gt=0)
    elif filter_key == "mine":
        queryset = queryset.filter(assignee=user, state=ConversationState.OPEN)
    elif filter_key == "unassigned":
        queryset = queryset.filter(assignee__isnull=True, state=ConversationState.OPEN)
    search = " ".join((search or "").split())[:MAX_SEARCH_LENGTH]
    if search:
        named = numbers_matching(team.pk, search)
        queryset = queryset.filter(search_q(search) | Q(contact_key__in=named))
    return queryset


def search_q(term: str) -> Q:
    """A number (any way it is written: the digits are compared) or words of a message."""
    digits = "".join(ch for ch in term if ch.isdigit())
    by_text = Exists(
        ConversationMessage.objects.filter(conversation=OuterRef("pk"), text__icontains=term)
    )
    if digits and len(digits) >= 3 and not any(ch.isalpha() for ch in term):
        return Q(contact_key__contains=digits) | by_text
    return by_text


def unread_conversations(membership) -> int:
    """For the navigation badge: conversations of the team with something this person has not
    read (closed ones included: a new message reopens them anyway)."""
    return (
        with_unread(Conversation.objects.filter(team=membership.team), membership.user)
        .filter(unread__gt=0)
        .count()
    )


def unread_notifications(membership):
    return Notification.objects.filter(
        user=membership.user, team=membership.team, read_at__isnull=True
    ).select_related("conversation")


# --- Pages ------------------------------------------------------------------------------------


def encode_cursor(conversation: Conversation) -> str:
    return f"{(conversation.last_message_at - _EPOCH) // _MICROSECOND}.{conversation.pk}"


def decode_cursor(value: str) -> tuple[datetime, int]:
    try:
        micros, pk = value.split(".")
        at, pk = _EPOCH + int(micros) * _MICROSECOND, int(pk)
    except (ValueError, OverflowError):
        raise BadCursor(value) from None
    if not 0 < pk <= MAX_ID:
        raise BadCursor(value)
    return at, pk


def page(queryset, after: str | None = None) -> tuple[list, str | None]:
    """One page, newest activity first, after a cursor; and the cursor of the next page."""
    if after:
        at, pk = decode_cursor(after)
        queryset = queryset.filter(last_message_at__lte=at).filter(
            Q(last_message_at__lt=at) | Q(last_message_at=at, pk__lt=pk)
        )
    rows = list(queryset.order_by("-last_message_at", "-pk")[: PAGE_SIZE + 1])
    older = encode_cursor(rows[PAGE_SIZE - 1]) if len(rows) > PAGE_SIZE else None
    return rows[:PAGE_SIZE], older


# --- A thread -----------------------------------------------------------------------------------


@dataclass
class Thread:
    items: list  # ("message", ConversationMessage) and ("note", ConversationNote), in time order
    earlier: bool  # older messages exist above the first one shown
    last_message_id: int


def thread(conversation: Conversation, *, limit: int = THREAD_PAGE, after_id: int = 0) -> Thread:
    """The latest `limit` messages of a conversation with the notes written among them, or
    (`after_id`) only the messages stored after that one, for the live page."""
    messages = ConversationMessage.objects.filter(conversation=conversation).select_related(
        "outbound"
    )
    messages = messages.prefetch_related(
        Prefetch("files", queryset=InboxFile.objects.order_by("position", "pk")),
        Prefetch("outbound__attachments", queryset=Attachment.objects.order_by("position", "pk")),
        Prefetch("outbound__recipients", queryset=Recipient.objects.order_by("pk")),
    )
    if after_id:
        rows = list(messages.filter(pk__gt=after_id).order_by("at", "pk")[:limit])
        earlier = False
    else:
        newest = list(messages.order_by("-at", "-pk")[: limit + 1])
        earlier = len(newest) > limit
        rows = newest[:limit][::-1]
    notes = ConversationNote.objects.filter(conversation=conversation).select_related("author")
    if rows and earlier:
        notes = notes.filter(created_at__gte=rows[0].at)
    items = [("message", m.at, m.pk, m) for m in rows]
    if not after_id:
        items += [("note", n.created_at, n.pk, n) for n in notes]
    items.sort(key=lambda item: (item[1], item[0] == "note", item[2]))
    return Thread(
        items=[(kind, obj) for kind, _, _, obj in items],
        earlier=earlier,
        last_message_id=max((m.pk for m in rows), default=after_id),
    )


def last_inbound(conversation: Conversation) -> ConversationMessage | None:
    return (
        ConversationMessage.objects.filter(conversation=conversation, direction=Direction.INBOUND)
        .order_by("-at", "-pk")
        .first()
    )
