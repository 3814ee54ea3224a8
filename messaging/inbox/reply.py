"""Replying in a thread: the compose page's rules, limits, photo fitting and outbox, with the
sender fixed to the number the contact texted and the recipients to the conversation's.

A group conversation is answered with one group message to everyone in it; a conversation with
one contact with a message to them.
"""

from __future__ import annotations

from collections.abc import Sequence

from messaging.compose import media, senders, submission
from messaging.compose.uploads import ingest_upload
from messaging.core.phones import format_number
from messaging.models import Conversation, OutboundMessage, Role, SenderNumber


def reply_number(membership, conversation: Conversation) -> SenderNumber | None:
    """The team number of the conversation, if this person may send from it."""
    numbers = senders.sender_numbers(membership.user, membership.team).filter(
        phone_number=conversation.team_number
    )
    if conversation.connection_id:
        preferred = numbers.filter(connection_id=conversation.connection_id).first()
        if preferred is not None:
            return preferred
    return numbers.first()


def why_no_reply(membership, conversation: Conversation) -> str:
    """Why this person cannot reply from the conversation's number (for the reply box)."""
    number = format_number(conversation.team_number)
    connection = conversation.connection
    if connection is None:
        return f"No RingCentral link of this team has {number} any more."
    if not connection.is_usable:
        return (
            f"The RingCentral link that owns {number} is not working. Ask a team admin to link "
            "it again on the RingCentral page."
        )
    owner = connection.linked_by.email if connection.linked_by else "another member"
    return (
        f"{number} belongs to the RingCentral link of {owner}, which is not shared with the team. "
        "Ask them to share it (RingCentral page), or answer from one of your own numbers on the "
        "compose page."
    )


def send_reply(
    membership,
    conversation: Conversation,
    *,
    text: str,
    uploads: Sequence = (),
    fit_images: bool = True,
    origin: str = "",
    drafts: Sequence = (),
    file_errors: Sequence[str] = (),
    template=None,
    send_at=None,
    schedule_zone: str = "",
) -> list[OutboundMessage]:
    """Check and send a reply — or schedule it, with `send_at`; raises
    `submission.ComposeInvalid` with messages by field (PermissionDenied for a viewer).
    `drafts`: files a picked template attached (compose's drafts of the reply box)."""
    number = reply_number(membership, conversation)
    if number is None and membership.can(Role.SENDER):
        raise submission.ComposeInvalid({"sender": [why_no_reply(membership, conversation)]})
    files, problems = [], list(file_errors)
    for uploaded in uploads:
        try:
            files.append(ingest_upload(uploaded))
        except media.MediaError as error:
            problems.append(error.message)
    outgoing = submission.prepare(
        membership,
        sender=number.pk if number is not None else "",
        to=",".join(conversation.contact_numbers),
        text=text,
        files=files,
        drafts=drafts,
        mode=submission.Mode.GROUP if conversation.is_group else submission.Mode.SEPARATE,
        fit_images=fit_images,
        file_errors=problems,
        template=template,
        send_at=send_at,
        schedule_zone=schedule_zone,
    )
    return submission.submit(outgoing, origin=origin)
