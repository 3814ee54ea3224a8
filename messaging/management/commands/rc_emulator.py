"""`python manage.py rc_emulator --port N [--redirect-uri URI ...]`: the RingCentral emulator
alone, seeded with the demo world, in the foreground (Ctrl-C stops it).

`make run` starts it in demo mode. The demo app is registered with this portal's client id and
secret when DEMO_MODE is on (so the portal can sign in to it), otherwise with the emulator's own
demo credentials: real RingCentral credentials are never handed to the emulator.
"""

import errno

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from messaging.ringcentral.emulator import EmulatorConfig, demo, serve_forever


class Command(BaseCommand):
    help = "Run the built-in RingCentral emulator with the demo seed."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=settings.DEMO_EMULATOR_PORT)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--redirect-uri",
            action="append",
            dest="redirect_uris",
            default=[],
            metavar="URI",
            help="An OAuth redirect URI to register for the demo app (repeatable).",
        )

    def handle(self, *args, **options):
        host, port = options["host"], options["port"]
        if settings.DEMO_MODE:
            client_id = settings.RINGCENTRAL_CLIENT_ID
            client_secret = settings.RINGCENTRAL_CLIENT_SECRET
        else:
            client_id, client_secret = demo.DEMO_CLIENT_ID, demo.DEMO_CLIENT_SECRET
        redirect_uris = options["redirect_uris"] or list(demo.DEMO_REDIRECT_URIS)

        def announce(emu):
            self.stdout.write(f"RingCentral emulator (demo data) listening on {emu.base_url}")
            self.stdout.write(f"  client id: {client_id}")
            for uri in redirect_uris:
                self.stdout.write(f"  redirect URI: {uri}")
            self.stdout.flush()

        try:
            # Returns on SIGINT/SIGTERM, which serve_forever turns into a clean stop.
            serve_forever(
                host,
                port,
                EmulatorConfig(),
                seed_demo=True,
                redirect_uris=redirect_uris,
                client_id=client_id,
                client_secret=client_secret,
                ready=announce,
            )
        except OSError as exc:
            raise CommandError(self._port_message(host, port, exc)) from None
        self.stdout.write("Emulator stopped.")

    @staticmethod
    def _port_message(host, port, exc):
        if exc.errno == errno.EADDRINUSE:
            return (
                f"Port {port} on {host} is already in use, so the emulator cannot start. Stop the "
                "program using it, or pick another port with --port (and set DEMO_EMULATOR_PORT "
                "for the portal)."
            )
        return f"The emulator cannot listen on {host}:{port}: {exc.strerror or exc}."
