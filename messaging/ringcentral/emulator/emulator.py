"""The public face of the emulator: one object that owns the world, the server and its threads."""

from __future__ import annotations

import ssl
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from .a2p import A2PStore
from .clock import Clock, Scheduler
from .config import EmulatorConfig
from .contacts import Contacts, ContactScript, on_outbound
from .faults import Fault, FaultBook
from .inbound import FileTuple, receive, send_elsewhere
from .journal import Journal, JournalEntry
from .messages import READ_STATUSES, MessageStore, StoredMessage
from .oauth import AuthorizeError, OAuthService
from .optout import ConsentEntry, OptOuts
from .ratelimit import RateLimiter
from .server import EmulatorHTTPServer
from .state import E164, Account, App, Extension, RecipientBehaviour, World
from .subscriptions import Delivery, SubscriptionService
from .sync import SyncTokens


class Emulator:
    """A RingCentral look-alike served over real HTTP.

    Usage::

        with Emulator(EmulatorConfig(sent_after=0)) as emu:   # started on a free port
            emu.register_app("id", "secret", redirect_uris=["http://app/cb"])
            ext = emu.add_extension(name="Ada", numbers=[{...}])
            requests.post(emu.base_url + "/restapi/oauth/token", ...)

    Thread-safety: every public method may be called from any thread while the server runs.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self._clock = Clock()
        self.world = World()
        self.oauth = OAuthService(self)
        self.messages = MessageStore()
        # High Volume SMS batches and their messages, apart from the message store.
        self.a2p = A2PStore()
        self.subscriptions = SubscriptionService(self)
        self.rate_limiter = RateLimiter(self.now, lambda: self.config)
        self.faults = FaultBook()
        self.opt_outs = OptOuts()
        self.contacts = Contacts()
        self.scheduler = Scheduler()
        self.sync_tokens = SyncTokens()
        self._journal = Journal()
        self._tick_lock = threading.Lock()
        self._server: EmulatorHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stop_ticker = threading.Event()

    # -- lifecycle --------------------------------------------------------------------------

    def start(
        self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> Emulator:
        """Serve in daemon threads; ``port=0`` picks a free port (see ``base_url``).

        With ``tls`` (a server context, e.g. ``tls.self_signed(dir).server_context()``) it
        serves https, as RingCentral does.
        """
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._server = EmulatorHTTPServer((host, port), self, tls)
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="rc-emulator-http",
            daemon=True,
        )
        self._serve_thread.start()
        self.subscriptions.start()
        self._stop_ticker.clear()
        self._ticker = threading.Thread(
            target=self._tick_loop, name="rc-emulator-tick", daemon=True
        )
        self._ticker.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        server.stopping.set()
        self._stop_ticker.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self.subscriptions.stop()
        self._server = None

    def __enter__(self) -> Emulator:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def base_url(self) -> str:
        """Where clients reach the emulator, e.g. ``http://127.0.0.1:43817``."""
        if self.config.public_base_url:
            return self.config.public_base_url.rstrip("/")
        if self._server is None:
            return "http://emulator.invalid"
        host, port = self.address
        if host in ("0.0.0.0", "", "::"):  # noqa: S104 - mapping a wildcard bind to loopback
            host = "127.0.0.1"
        scheme = "https" if self._server.tls is not None else "http"
        return f"{scheme}://{host}:{port}"

    def _tick_loop(self) -> None:
        while not self._stop_ticker.wait(self.config.tick_interval):
            self.tick()

    # -- time -------------------------------------------------------------------------------

    @property
    def clock(self) -> Callable[[], float]:
        """A callable returning emulator epoch seconds. Assigning a callable replaces the source
        of time (and resets the ``advance`` offset)."""
        return self._clock.now

    @clock.setter
    def clock(self, source: Callable[[], float]) -> None:
        self._clock.base = source

    def now(self) -> float:
        return self._clock.now()

    def advance(self, seconds: float) -> None:
        """Move emulator time forward, then emit any status notifications that became due."""
        self._clock.advance(seconds)
        self.tick()

    def tick(self) -> None:
        """Run the scheduled actions that are due (contacts' answers), then emit "updated"
        notifications for messages whose status changed since the last tick."""
        with self._tick_lock:
            now = self.now()
            for action in self.scheduler.pop_due(now):
                try:
                    action()
                except Exception:  # one broken action must not stop the clock
                    traceback.print_exc(file=sys.stderr)
            changed: dict[tuple[int, str], list[StoredMessage]] = {}
            for message in self.messages:
                current = message.statuses(now)
                if self.messages.notified.get(message.id) != current:
                    self.messages.notified[message.id] = current
                    key = (message.extension_id, message.direction)
                    changed.setdefault(key, []).append(message)
            for (extension_id, direction), items in changed.items():
                last = max(m.last_modified(now) for m in items)
                self.subscriptions.messages_updated(extension_id, direction, len(items), last)

    # -- world ------------------------------------------------------------------------------

    def register_app(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str] | tuple[str, ...] = (),
        scopes: list[str] | tuple[str, ...] | None = None,
        name: str = "Emulated app",
    ) -> App:
        return self.world.register_app(client_id, client_secret, list(redirect_uris), scopes, name)

    def add_account(
        self, company: str = "Emulated Account", main_number: str | None = None
    ) -> Account:
        return self.world.add_account(company, main_number)

    def add_extension(
        self,
        name: str,
        email: str | None = None,
        numbers: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
        account_id: str | None = None,
        extension_number: str | None = None,
    ) -> Extension:
        """Numbers are dicts: ``phone_number`` (E.164, required), ``features`` (default none),
        ``type`` (VoiceFax), ``usage_type`` (DirectNumber), ``payment_type`` (Local), ``label``,
        ``status`` (Normal), ``primary``, ``location``."""
        return self.world.add_extension(name, email, numbers, account_id, extension_number)

    def set_recipient_behaviour(
        self,
        phone_number: str,
        outcome: str = "delivered",
        error_code: str | None = None,
        sent_after: float | None = None,
        delivered_after: float | None = None,
    ) -> None:
        """How messages to ``phone_number`` end; applies to messages sent from now on."""
        behaviour = RecipientBehaviour(outcome, error_code, sent_after, delivered_after)
        self.world.set_behaviour(phone_number, behaviour)

    def clear_recipient_behaviour(self, phone_number: str) -> None:
        self.world.set_behaviour(phone_number, None)

    def update_config(self, **changes: Any) -> EmulatorConfig:
        self.config = self.config.updated(changes)
        return self.config

    # -- messages from outside the calling app -----------------------------------------------

    def inbound(
        self,
        from_number: str,
        to_number: str,
        text: str = "",
        attachments: Iterable[FileTuple] = (),
        also_to: Iterable[str] = (),
        at: float | None = None,
        read: bool = False,
    ) -> StoredMessage:
        """Contact ``from_number`` texts ``to_number`` (a number of an extension with
        SmsSender; MmsSender for attachments). ``attachments``: (filename, content_type, bytes);
        ``also_to``: the other members of a group MMS; ``at``: a creation time in the past
        (default now); ``read``: stored Read instead of Unread. Opt-out keywords apply
        (``optout.py``). Raises ``ValueError`` for anything RingCentral would not deliver."""
        return receive(self, from_number, to_number, text, attachments, also_to, at, read)

    def outbound_elsewhere(
        self,
        from_number: str,
        to_numbers: Iterable[str],
        text: str = "",
        attachments: Iterable[FileTuple] = (),
        at: float | None = None,
    ) -> StoredMessage:
        """The user owning ``from_number`` sends from another RingCentral app or a desk phone:
        an Outbound record the calling app did not create, with the usual lifecycle."""
        return send_elsewhere(self, from_number, to_numbers, text, attachments, at)

    def message_stored(self, message: StoredMessage) -> None:
        """Tell subscriptions about a new record, and scripted contacts about a message to them."""
        self.subscriptions.message_created(message)
        if not message.inbound:
            on_outbound(self, message)

    def set_read_status(self, message_id: int, read_status: str) -> StoredMessage:
        """Mark a message Read or Unread, as ``PUT .../message-store/{id}`` does."""
        if read_status not in READ_STATUSES:
            raise ValueError("read_status must be Read or Unread")
        now = self.now()
        result = self.messages.set_read_status(message_id, read_status, now)
        if result is None:
            raise KeyError(message_id)
        message, changed = result
        if changed:
            self.subscriptions.messages_updated(message.extension_id, message.direction, 1, now)
        return message

    def opted_out(self, from_number: str, to_number: str) -> bool:
        """Whether contact ``to_number`` opted out of texts from ``from_number`` (by a record of
        that pair, or of every number of the account, ``"*"``)."""
        owner = self.world.owner_of(from_number)
        account_id = owner.account_id if owner is not None else None
        return self.opt_outs.opted_out(from_number, to_number, account_id)

    def set_consent(
        self,
        from_number: str,
        to_number: str,
        opt_status: str,
        source: str = "Recipient",
        at: float | None = None,
        account_id: str | None = None,
    ) -> ConsentEntry | None:
        """Opt contact ``to_number`` out of (``"OptOut"``) or back in to (``"OptIn"``) texts
        from ``from_number`` (``"*"``: every number of ``account_id``), as a keyword or the
        consent API does; subscriptions with the consents filter are told. Returns the new
        record, or None when the pair already had that state."""
        if account_id is None:
            owner = self.world.owner_of(from_number)
            if owner is None:
                raise ValueError(f"{from_number} belongs to no extension; give account_id")
            account_id = owner.account_id
        entry = self.opt_outs.set(
            account_id, from_number, to_number, opt_status, source, self.now() if at is None else at
        )
        if entry is not None:
            self.subscriptions.consent_changed(entry)
        return entry

    def script_contact(self, phone_number: str, script: str, delay: float = 5.0) -> None:
        """Make ``phone_number`` answer the messages it gets: ``reply``, ``photo`` or ``stop``
        (``contacts.py``), ``delay`` emulator seconds after a message reaches it."""
        if not E164.match(phone_number):
            raise ValueError(f"{phone_number!r} is not an E.164 number")
        self.contacts.set(phone_number, ContactScript(script, delay))

    def clear_contact_script(self, phone_number: str) -> None:
        self.contacts.set(phone_number, None)

    def invalidate_sync_tokens(self, extension_id: int | None = None) -> int:
        """Make the message-sync tokens of ``extension_id`` (every extension when None) answer
        MSG-333, so clients must run a full sync; how many tokens were dropped."""
        return self.sync_tokens.invalidate(extension_id)

    # -- OAuth shortcuts ---------------------------------------------------------------------

    def authorize_code(
        self,
        client_id: str,
        redirect_uri: str,
        extension_id: int,
        code_challenge: str | None = None,
        method: str = "S256",
    ) -> str:
        """An authorization code as if the user had approved in the browser."""
        params = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code"}
        if code_challenge is not None:
            params["code_challenge"] = code_challenge
            params["code_challenge_method"] = method
        try:
            request = self.oauth.parse_authorize(params)
        except AuthorizeError as error:
            raise ValueError(f"{error.code}: {error.description}") from error
        extension = self.world.extensions.get(extension_id)
        if extension is None:
            raise ValueError(f"unknown extension {extension_id}")
        return self.oauth.issue_code(request, extension).code

    def issue_tokens(self, client_id: str, extension_id: int) -> dict[str, Any]:
        """A token response (``TokenInfo``) for a new session, skipping the whole OAuth flow."""
        app = self.world.apps[client_id]
        return self.oauth.issue_direct(app, self.world.extensions[extension_id])

    # -- faults, journal, deliveries -----------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        self.faults.add(fault)

    def journal_seq(self) -> int:
        return self._journal.next_seq()

    def record(self, entry: JournalEntry) -> None:
        self._journal.add(entry)

    @property
    def journal(self) -> list[JournalEntry]:
        """A snapshot of every request received so far, in arrival order."""
        return self._journal.entries()

    def journal_entries(self, path_contains: str | None = None) -> list[JournalEntry]:
        return self._journal.entries(path_contains)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook notification attempt (not the creation handshakes)."""
        return self.subscriptions.deliveries()

    def wait_for_deliveries(self, timeout: float = 5.0) -> bool:
        return self.subscriptions.wait_idle(timeout)

    def message_status(self, message_id: int) -> str:
        message = self.messages.get(message_id)
        if message is None:
            raise KeyError(message_id)
        return message.status(self.now())

    def reset(self) -> None:
        """Forget journal, faults, messages, High Volume batches, deliveries, rate-limit
        counters, opt-outs, pending contact answers and sync tokens.

        Apps, accounts, extensions, recipient behaviours, contact scripts, sessions and
        subscriptions stay.
        """
        self.wait_for_deliveries(timeout=2.0)
        self._journal.clear()
        self.faults.clear()
        self.scheduler.clear()
        self.opt_outs.clear()
        self.sync_tokens.clear()
        self.messages.clear()
        self.a2p.clear()
        self.subscriptions.clear_deliveries()
        self.rate_limiter.reset()
