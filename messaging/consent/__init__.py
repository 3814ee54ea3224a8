"""Consent: the one ledger of opt-outs and opt-ins (messaging/models/consent.py), the keywords
that change it, and the check every sending path asks before RingCentral is asked."""
