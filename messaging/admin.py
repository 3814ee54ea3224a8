"""The history console for operators.

The admin reads everything and changes little: a message's status moves only through
messaging/outbox/states.py (the outbox's actions call it and say how many messages moved and
why the rest did not), messages are never added here (the compose page and `send_message` are
the only ways in), and RingCentral tokens never appear on any page, not even encrypted.

Changelists run a fixed number of queries whatever the page holds: related rows come from
`list_select_related` or one prefetch, and relation filters load their choices in one query.
"""

# Each room registers its own models with the console (Django's admin autodiscovery imports
# this module).
from messaging.api import admin as api_admin  # noqa: F401
from messaging.audit import admin as audit_admin  # noqa: F401
from messaging.campaigns import admin as campaigns_admin  # noqa: F401
from messaging.consent import admin as consent_admin  # noqa: F401
from messaging.contacts import admin as contacts_admin  # noqa: F401
from messaging.hooks import admin as hooks_admin  # noqa: F401
from messaging.inbox import admin as inbox_admin  # noqa: F401
from messaging.links import admin as links_admin  # noqa: F401
from messaging.outbox import admin as outbox_admin  # noqa: F401
from messaging.teams import admin as teams_admin  # noqa: F401
