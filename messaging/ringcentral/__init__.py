"""The provider boundary: everything that knows RingCentral's URLs, wire formats and errors.

Nothing outside this package imports `requests` or builds a RingCentral URL.
    http.py         the one HTTP chokepoint (timeouts, User-Agent, typed network errors)
    errors.py       RingCentral error answers as typed exceptions (retryable / permanent)
    oauth.py        authorize URL with state + PKCE, code exchange, refresh under a row lock
    client.py       a narrow REST client for one linked user
    connections.py  linking, number sync and disconnecting a RingCentralConnection
    emulator/       a RingCentral look-alike over real HTTP, for tests and demo mode

Kept free of imports so the emulator can run without Django being set up.
"""
