"""What a link announces to the rooms that follow it (webhook subscriptions, later the inbox).

    connection_linked(connection_id)      after a link or re-link has been stored
    numbers_synced(connection_id)         after the link's phone numbers were read (at link time
                                          and on request), so its numbers are known
    connection_disconnecting(connection)  before its tokens are deleted (they still work)

Receivers must not raise: a link or a disconnect succeeds whatever they do.
"""

from django.dispatch import Signal

connection_linked = Signal()
numbers_synced = Signal()
connection_disconnecting = Signal()
