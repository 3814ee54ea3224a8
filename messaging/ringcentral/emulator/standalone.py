"""Running the emulator as its own process (``python -m messaging.ringcentral.emulator``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from .config import EmulatorConfig
from .demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URIS
from .demo import seed_demo as seed_demo_world
from .emulator import Emulator


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8765,
    config: EmulatorConfig | None = None,
    seed_demo: bool = True,
    redirect_uris: Sequence[str] | None = None,
    client_id: str = DEMO_CLIENT_ID,
    client_secret: str = DEMO_CLIENT_SECRET,
    ready: Callable[[Emulator], None] | None = None,
    stop_event: threading.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop_event`` is set).

    With ``seed_demo`` the demo world is created for ``client_id``/``client_secret`` and
    ``redirect_uris`` (default: the local portal's callback). ``ready`` is called with the
    running emulator, e.g. to print its address.
    """
    emu = Emulator(config)
    if seed_demo:
        seed_demo_world(emu, client_id, client_secret, tuple(redirect_uris or DEMO_REDIRECT_URIS))
    elif redirect_uris is not None:
        emu.register_app(client_id, client_secret, list(redirect_uris))
    stop = stop_event or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    emu.start(host, port)
    try:
        if ready is not None:
            ready(emu)
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the RingCentral emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--no-demo", action="store_true", help="start with an empty world")
    parser.add_argument("--redirect-uri", action="append", dest="redirect_uris")
    parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEMO_CLIENT_SECRET)
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--no-consent-page", action="store_true")
    parser.add_argument("--log-requests", action="store_true")
    args = parser.parse_args(argv)

    config = EmulatorConfig(
        rate_limits_enabled=not args.no_rate_limits,
        consent_page=not args.no_consent_page,
        log_requests=args.log_requests,
    )

    def announce(emu: Emulator) -> None:
        print(f"RingCentral emulator listening on {emu.base_url}", file=sys.stderr, flush=True)

    serve_forever(
        args.host,
        args.port,
        config,
        seed_demo=not args.no_demo,
        redirect_uris=args.redirect_uris,
        client_id=args.client_id,
        client_secret=args.client_secret,
        ready=announce,
    )
    return 0
