"""Consent: who may be texted.

ledger         the one ledger of opt-outs and opt-ins (messaging/models/consent.py), every
               source writes through `record` (or `record_new` for many new records)
checks         the check every sending path asks before RingCentral is asked, the sentence
               that explains a refusal, and `refused_at_send` for a message already queued
keywords       STOP, START, … texted by a contact (called by the inbox)
quiet_hours    the team's quiet hours; `window_for(team, number)` decides a contact's window
team_settings  the opt-out line and the time zone, as compose reads them
actions        changes a team admin makes on the Consent pages
signals        `consent_changed`, followed by tracking to write a change by hand to RingCentral
forms, views   `/consent/` and `/consent/settings/`
admin          the console's read-only view of records with their history
"""
