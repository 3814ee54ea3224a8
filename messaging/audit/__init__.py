"""The audit log: an append-only record of who did what, when and from where.

    audit.record(action, team=…, target=…, details=…)   one entry, in the caller's transaction
    audit.record_each(action, team=…, items=…)          one entry per (target, details), at once
    audit.acting_as(user)                               who acts outside a request (commands)

Who acted is read from the request the middleware (`middleware`) keeps for the current
context: its user and, when the API authenticated one, its `request.api_key`; outside a
request the actor is the user named by `acting_as`, else "system". Reading the log, its
filters and the CSV export are in `browsing`; the team admin's page in `views`.
"""

from messaging.audit.log import acting_as, record, record_each

__all__ = ["acting_as", "record", "record_each"]
