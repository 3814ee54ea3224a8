"""What the inbox announces to the rooms above it that follow conversations (outgoing webhooks).

    message_received(message, conversation)    a received text stored for the first time,
                                               inside the transaction that stored it
    conversation_assigned(conversation, by)    a conversation was assigned or unassigned

Receivers that call out wait for the commit (`transaction.on_commit`).
"""

from django.dispatch import Signal

message_received = Signal()
conversation_assigned = Signal()
