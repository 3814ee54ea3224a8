"""What the outbox announces to the rooms that follow its messages (the inbox threads them).

    messages_created(messages)   new messages, inside the transaction that created them

Receivers run in that transaction: what they write commits or rolls back with the messages.
"""

from django.dispatch import Signal

messages_created = Signal()
