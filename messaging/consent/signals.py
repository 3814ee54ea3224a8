"""What the ledger announces, for the rooms above it that follow consent changes.

`consent_changed(sender=ConsentRecord, record=…)`: a record's state changed (sent inside the
writing transaction; receivers that call out use `transaction.on_commit`). Delivery tracking
writes a change made by hand back to RingCentral's consent list (messaging/tracking/receivers.py).
"""

from django.dispatch import Signal

consent_changed = Signal()
