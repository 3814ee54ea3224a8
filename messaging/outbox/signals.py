"""What the outbox announces to the rooms that follow its messages (the inbox threads them).

    messages_created(messages)   new messages, inside the transaction that created them
    message_status_changed(message_id, team_id, status)
                                 a message became sent, failed, or took its final delivery
                                 status (delivered, delivery_failed, sending_failed,
                                 no_receipt), sent by outbox/states.py on the send path:
                                 receivers check cheaply whether they care, and call out
                                 only after commit

Receivers run in that transaction: what they write commits or rolls back with the messages.
"""

from django.dispatch import Signal

messages_created = Signal()
message_status_changed = Signal()
