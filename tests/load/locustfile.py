"""What one team member does in the portal, for the load run (tests/load/run.py starts the
servers, seeds the data and runs this file with locust).

Every simulated person is a member already signed in: run.py made one session per member, and
`LOAD_SESSIONS` names the JSON file listing them (session key, sender number id, message ids
of the seeded history). Signing in is not what is measured.

A person, between pauses of one to four seconds, mostly reads: the outbox, a folder, a search,
an older page, a message's page, and the live status endpoint the outbox page polls for the
messages on screen; now and then they write a text to one to three people (the compose page,
then a plain form POST, as a browser without JavaScript sends it).

The portal runs as in production behind a proxy that ends TLS and says so with
`X-Forwarded-Proto: https`; each request carries that header, and the secure cookies the portal
sets (CSRF) travel back as the browser on the other side of that proxy would send them.
"""

from __future__ import annotations

import html
import itertools
import json
import os
import random
import re
from pathlib import Path
from urllib.parse import urlsplit

from locust import HttpUser, between, task

_SEED = json.loads(Path(os.environ["LOAD_SESSIONS"]).read_text())
_MEMBERS = itertools.cycle(_SEED["members"])
SEEDED_IDS = _SEED["message_ids"]
FOLDERS = ("queued", "sending", "sent", "delivered", "failed", "attention", "canceled")
SEARCHES = ("appointment", "invoice", "Tuesday", "555 01", "(650) 555-1", "refill", "thanks")
MESSAGE_LINK = re.compile(r'href="/messages/(\d+)/"')
OLDER_LINK = re.compile(r'href="(\?[^"]*after=[^"]*)" rel="next"')
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
# The live status endpoint takes at most this many ids (outbox/views/messages.py, MAX_STATUS_IDS).
STATUS_BATCH = 50


class TeamMember(HttpUser):
    wait_time = between(1, 4)

    def on_start(self):
        member = next(_MEMBERS)
        self.sender_id = str(member["sender_id"])
        host = urlsplit(self.host)
        self.origin = f"https://{host.netloc}"
        self.client.cookies.set("sessionid", member["session"], domain=host.hostname, path="/")
        self.client.headers["X-Forwarded-Proto"] = "https"
        self.seen: list[int] = []
        self.older: str | None = None

    def _like_the_browser(self) -> None:
        # The cookies the portal marks Secure reached the browser over https; they go back to
        # the portal over the proxy's plain-HTTP hop, so the flag must not hold them back here.
        for cookie in self.client.cookies:
            cookie.secure = False

    def _read_list(self, response) -> None:
        ids = [int(pk) for pk in MESSAGE_LINK.findall(response.text)]
        if ids:
            self.seen = ids
        found = OLDER_LINK.search(response.text)
        self.older = html.unescape(found.group(1)) if found else None

    def _get(self, url: str, name: str):
        with self.client.get(url, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
            elif response.url and urlsplit(response.url).path.startswith("/accounts/"):
                response.failure("signed out")
            return response

    @task(5)
    def outbox(self):
        self._read_list(self._get("/messages/", "/messages/"))

    @task(4)
    def folder(self):
        folder = random.choice(FOLDERS)
        self._read_list(self._get(f"/messages/?folder={folder}", "/messages/?folder=[folder]"))

    @task(2)
    def search(self):
        term = random.choice(SEARCHES)
        self._get(f"/messages/?q={term}", "/messages/?q=[term]")

    @task(2)
    def older_page(self):
        if self.older:
            self._read_list(self._get(f"/messages/{self.older}", "/messages/?after=[cursor]"))

    @task(4)
    def message_page(self):
        pk = random.choice(self.seen or SEEDED_IDS)
        self._get(f"/messages/{pk}/", "/messages/[id]/")

    @task(6)
    def live_status(self):
        ids = self.seen[:STATUS_BATCH] or random.sample(SEEDED_IDS, STATUS_BATCH)
        with self.client.get(
            "/messages/status/",
            params={"ids": ",".join(map(str, ids))},
            name="/messages/status/",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or "messages" not in response.json():
                response.failure(f"HTTP {response.status_code}")

    @task(1)
    def compose(self):
        with self.client.get(
            "/messages/compose/", name="/messages/compose/", catch_response=True
        ) as page:
            self._like_the_browser()
            token = CSRF_FIELD.search(page.text or "")
            if page.status_code != 200 or token is None:
                page.failure(f"HTTP {page.status_code}, no compose form")
                return
        count = random.randint(1, 3)
        numbers = [f"+1650555{random.randint(2000, 2999):04d}" for _ in range(count)]
        form = {
            "csrfmiddlewaretoken": token.group(1),
            "sender": self.sender_id,
            "to": "\n".join(numbers),
            "mode": "separate",
            "text": f"Hello from the front desk, your appointment is at {random.randint(8, 17)}h.",
        }
        headers = {"Origin": self.origin, "Referer": f"{self.origin}/messages/compose/"}
        with self.client.post(
            "/messages/compose/",
            data=form,
            headers=headers,
            name="/messages/compose/ [POST]",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"HTTP {response.status_code}, expected the redirect")
