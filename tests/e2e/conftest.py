"""Browser tests: Debian's Chromium driven by Playwright against Django's live server.

Fixtures: ``browser`` (one Chromium per session), ``page`` (a fresh context per test; a failing
test leaves a full-page screenshot in ``test-artifacts/``), ``sign_in(user, team)`` (a session
cookie for the live server, without going through the login form) and ``page_without_js``.
Mark tests with ``@pytest.mark.e2e``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django refuses database access from
# a thread with a running loop unless told that this is deliberate.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def _failed(node) -> bool:
    return any(
        getattr(getattr(node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def _page(browser, request, **options):
    context = browser.new_context(
        locale="en-US", viewport={"width": 1280, "height": 900}, **options
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    if _failed(request.node):
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)[-150:]
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        except Exception as error:  # noqa: BLE001 - a missing screenshot must not hide the failure
            print(f"screenshot failed: {error}")
    context.close()


@pytest.fixture
def page(browser, request, transactional_db, live_server):
    yield from _page(browser, request, base_url=live_server.url)


@pytest.fixture
def page_without_js(browser, request, transactional_db, live_server):
    yield from _page(browser, request, base_url=live_server.url, java_script_enabled=False)


@pytest.fixture
def sign_in(live_server):
    """``sign_in(page, user, team=None)``: the browser of ``page`` is signed in as ``user``."""
    from django.conf import settings
    from django.test import Client

    def _sign_in(page, user, team=None):
        client = Client()
        client.force_login(user)
        if team is not None:
            session = client.session
            session["current_team_id"] = team.pk
            session.save()
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}]
        )

    return _sign_in


# --- Journeys: the whole portal, RingCentral's emulator and a real Celery worker ---------------
#
# The live server (in this process), the emulator (a real HTTP server in this process) and a
# `celery worker` subprocess share the test database, the broker and the media folder. Beat is
# stood in for by a thread of this process (`Backend.start`): beat's own schedule runs the
# dispatcher every 5 s and the delivery poll every 10 s, fixed in settings; the thread enqueues
# the same tasks every second, so a journey sees each step within seconds while the worker still
# does all of the work.

JOURNEY_CLIENT_ID = "mmsportal-e2e"
JOURNEY_CLIENT_SECRET = "mmsportal-e2e-secret"
TICK_SECONDS = 1.0


@pytest.fixture
def journey_media(settings, tmp_path):
    """Attachments in a folder of this test, shared with the worker (MEDIA_ROOT)."""
    root = tmp_path / "media"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root, "base_url": None},
        },
    }
    return root


@pytest.fixture
def rc_world(settings, transactional_db, live_server, journey_media):
    """The emulator on a free port, seeded with the demo world (emulator/demo.py) for an app
    whose redirect URI is the live server's callback; the portal is configured for that app
    (not demo mode: the settings an operator would write for a real RingCentral app)."""
    from messaging.ringcentral.emulator import Emulator, EmulatorConfig, demo

    emu = Emulator(EmulatorConfig()).start(host="127.0.0.1", port=0)
    demo.seed_demo(
        emu,
        JOURNEY_CLIENT_ID,
        JOURNEY_CLIENT_SECRET,
        [f"{live_server.url}/ringcentral/callback/"],
    )
    settings.RINGCENTRAL_SERVER_URL = emu.base_url
    settings.RINGCENTRAL_CLIENT_ID = JOURNEY_CLIENT_ID
    settings.RINGCENTRAL_CLIENT_SECRET = JOURNEY_CLIENT_SECRET
    settings.DEMO_MODE = False
    settings.PUBLIC_BASE_URL = ""
    reload_live_server_middleware(live_server)
    try:
        yield emu
    finally:
        emu.stop()


def reload_live_server_middleware(live_server):
    """Rebuild the live server's middleware after a settings change.

    The live server lives for the whole session, and middleware reads some settings once, when
    it is built: the Content-Security-Policy's `form-action` names RingCentral's origin, which
    is the emulator of the current test (without it Chromium refuses the redirect to the
    consent page).
    """
    handler = live_server.thread.httpd.get_app()
    while handler is not None:
        # Django's test wrappers for static and media files answer some requests with their
        # own copy of the middleware, so every layer that has one is rebuilt.
        if "_middleware_chain" in vars(handler):
            handler.load_middleware()
        handler = getattr(handler, "application", None)


class Backend:
    """A Celery worker subprocess plus a beat-like ticker, on a queue of this test.

    Tasks published by this process (the live server's enqueue-on-commit included) go to the
    queue from the moment the fixture starts, so a message queued before `start` waits in the
    broker for the worker, as it would while a deployment's workers are down.
    """

    def __init__(self, env: dict):
        import uuid

        from mmsportal.celery import app

        self._app = app
        self._previous_queue = app.conf.task_default_queue
        self.queue = f"e2e-{uuid.uuid4().hex[:12]}"
        app.conf.task_default_queue = self.queue
        self._env = env
        self.worker = None
        self._stop = None
        self._ticker = None

    def start(self, concurrency: int = 2):
        import threading

        from tests.worker import WorkerProcess, subprocess_env

        if self.worker is not None:
            return self
        self.worker = WorkerProcess(self.queue, concurrency, subprocess_env(**self._env))
        self.worker.wait_ready()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="e2e-beat", daemon=True)
        self._ticker.start()
        return self

    def _tick(self):
        from django.db import connection

        from messaging.campaigns.tasks import feed_campaigns
        from messaging.inbox.tasks import download_inbox_files, sync_inboxes
        from messaging.sending import tasks
        from messaging.tracking.tasks import poll_statuses

        try:
            while not self._stop.wait(TICK_SECONDS):
                try:
                    # The dispatcher publishes send tasks, so it runs here where the test's
                    # queue is the default; the poll itself runs in the worker.
                    tasks.dispatch_due()
                    # The campaign feeder too: the messages it releases are published here.
                    feed_campaigns()
                    poll_statuses.delay()
                    sync_inboxes.delay()
                    download_inbox_files.delay()
                except Exception as error:  # noqa: BLE001 - the next tick tries again
                    print(f"e2e beat: {error!r}")
        finally:
            connection.close()

    def output(self) -> str:
        return "".join(self.worker.output) if self.worker else ""

    def stop(self):
        import signal

        if self._stop is not None:
            self._stop.set()
            self._ticker.join(timeout=10)
        if self.worker is not None:
            # Nothing the worker still holds matters once the journey is over (its queue is
            # never read again), and a warm shutdown takes seconds on the SQLite broker.
            self.worker.stop(sig=signal.SIGKILL)
        self._app.conf.task_default_queue = self._previous_queue
        try:
            # Ticks the worker did not read: the queue is this test's alone, drop it.
            with self._app.connection_for_write() as connection:
                connection.default_channel.queue_purge(self.queue)
                connection.default_channel.queue_delete(self.queue)
        except Exception as error:  # noqa: BLE001 - leftovers in a test broker are harmless
            print(f"could not delete queue {self.queue}: {error!r}")


@pytest.fixture
def backend(transactional_db, rc_world, journey_media, request):
    """The worker and ticker for a journey (started by the test with `backend.start()`)."""
    env = {
        "RINGCENTRAL_SERVER_URL": rc_world.base_url,
        "RINGCENTRAL_CLIENT_ID": JOURNEY_CLIENT_ID,
        "RINGCENTRAL_CLIENT_SECRET": JOURNEY_CLIENT_SECRET,
        "PUBLIC_BASE_URL": "",
        "MEDIA_ROOT": str(journey_media),
        # Short tracking intervals: a delivery report is read as soon as it is due.
        "TRACKING_MIN_READ_INTERVAL": "1",
        # And a message received shows within a couple of seconds, by sync alone.
        "INBOX_SYNC_INTERVAL": "1",
        "OUTBOX_BACKOFF_SECONDS": "1,1,1,1,1",
    }
    from tests.test_send_task import clear_shared_limiter

    # The demo world has the same ids in every emulator, and the rate limiter's Redis keys
    # outlive a test's database: start each journey with a full budget.
    clear_shared_limiter()
    runner = Backend(env)
    try:
        yield runner
    finally:
        runner.stop()
        if _failed(request.node) and runner.worker is not None:
            print("worker output:\n" + runner.output()[-20_000:])


@pytest.fixture
def link_ringcentral(rc_world):
    """``link_ringcentral(page, email=DEMO_OFFICE_EMAIL)``: link RingCentral the way a person
    does — "Link RingCentral", pick the user on the emulator's sign-in page, approve — and
    land back on the portal's RingCentral page with the numbers read."""
    from playwright.sync_api import expect

    from messaging.ringcentral.emulator import demo

    def _link(page, email: str = demo.DEMO_OFFICE_EMAIL):
        page.get_by_role("navigation", name="Main").get_by_role("link", name="RingCentral").click()
        page.get_by_role("button", name="Link RingCentral").click()
        expect(page.get_by_role("heading", name="Sign in to RingCentral")).to_be_visible()
        page.get_by_label(re.compile(re.escape(email))).check()
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url(re.compile(r"/ringcentral/$"))
        expect(page.locator(".flash")).to_contain_text("RingCentral linked")
        expect(page.locator(".flash")).to_contain_text("can send")

    return _link


@pytest.fixture
def send_text():
    """``send_text(page, to, text, sender=DEMO_NUMBER_SMS_MMS, files=())``: fill in the compose
    page for one recipient (files through the file chooser), queue, and return the new
    message's row (the page lands on the message's own page)."""
    from playwright.sync_api import expect

    from messaging.core.phones import format_number
    from messaging.models import OutboundMessage
    from messaging.ringcentral.emulator import demo

    def _send(page, to: str, text: str, sender: str = demo.DEMO_NUMBER_SMS_MMS, files=()):
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Compose").click()
        expect(page.locator("#compose-form.js-enhanced")).to_be_visible()
        select = page.get_by_label("From", exact=True)
        option = select.locator("option", has_text=format_number(sender))
        select.select_option(option.get_attribute("value"))
        if files:
            # Files first: typing makes the page re-check the fields and re-flow below them,
            # and a click landing during that re-flow may miss the file input.
            with page.expect_file_chooser() as chooser:
                page.get_by_label("Attach files", exact=True).click()
            chooser.value.set_files(list(files))
            expect(page.locator("#attachment-list li[data-state=done]")).to_have_count(
                len(files), timeout=30_000
            )
        page.get_by_label("To", exact=True).fill(to)
        page.get_by_label("Message", exact=True).fill(text)
        # Let the live check answer (it adds the recipients line above the button) before
        # pressing the button, or the press may start on it and end beside it.
        expect(page.locator("#recipients-preview")).to_be_visible()
        page.wait_for_load_state("networkidle")
        page.get_by_role("button", name="Queue message").click()
        page.wait_for_url(re.compile(r"/messages/\d+/$"))
        return OutboundMessage.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))

    return _send
