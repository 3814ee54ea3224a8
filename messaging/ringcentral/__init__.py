"""The RingCentral wire protocol: everything that knows RingCentral's URLs, formats and errors.

Nothing outside this package imports `requests` or builds a RingCentral URL, and nothing in it
imports the rest of the app (no models, no other room): callers hand it what it needs, a
client its token source included.
    paths.py          every endpoint path
    http.py           the one HTTP chokepoint (timeouts, User-Agent, typed network errors)
    errors.py         RingCentral error answers as typed exceptions (retryable / permanent)
    limits.py         RingCentral's message limits and rate-limit groups, written once
    oauth.py          authorize URL with state + PKCE, code exchange, one refresh, revoke
    client.py         a narrow REST client for one RingCentral user
    records.py        message records and times, read in one place
    multipart.py      the body of a send, built apart from sending it
    message_store.py  bulk reads of the message store
    subscriptions.py  webhook subscription bodies and answers
    emulator/         a RingCentral look-alike over real HTTP, for tests and demo mode

Kept free of imports so the emulator can run without Django being set up.
"""
