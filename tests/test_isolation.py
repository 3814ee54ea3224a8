"""Team isolation, swept over the whole URL map.

Every URL pattern of the project is found by walking the resolver, so a URL added later is
covered without editing this file. Each pattern that names an object (id, key, uuid, token or
slug) is filled with an object of alice's team "Acme" and requested with GET and POST (the
plain test client, so the CSRF token counts as valid) by people who are not in Acme:

    charlie  an outsider with only his personal team
    vera     a viewer of another team, Globex
    sam      a sender of Globex, with a RingCentral link and a number of his own
    olga     the owner of Globex (reaches the deepest code paths of team pages)

Contract checked for every request:

* the answer is 404, as if the object did not exist. A 405 is accepted only when the method is
  refused before anything is looked up, which the sweep proves by asking for a nonexistent
  object of the same kind and getting the very same 405;
* no Acme data (team name, emails, numbers, texts, file names, stored paths) appears in the
  body or the headers;
* afterwards no row of any table the app owns (and no user, email address or authenticator)
  has changed.

URLs that act on the current team without naming an object (/messages/, /messages/status/,
compose with `?again=`, the dashboard, …) are walked too, with Acme's ids and search terms in
the query and the form: no Acme data may come back, nothing may change.

Not swept, on purpose:
* allauth's URLs act only on the signed-in user's own account; the keys in them are allauth's
  own e-mail confirmation and password reset keys, not team data (tests/test_accounts.py);
* the admin is for staff with two-factor authentication and shows every team by design
  (tests/test_admin_access.py);
* static files are served by WhiteNoise from the build, never from the database.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from messaging.api import keys as api_keys
from messaging.hooks import delivery as hook_delivery
from messaging.models import (
    Attachment,
    DraftAttachment,
    Membership,
    MessageStatus,
    OutboundMessage,
    Role,
    Team,
    WebhookDelivery,
    WebhookEndpoint,
)
from messaging.teams import actions as teams
from messaging.teams import invitations
from tests import media_samples as samples
from tests.conftest import client_for, make_user
from tests.factories import make_connection, make_message, make_number

# --- Walking the URL map --------------------------------------------------------------------------

_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass(frozen=True)
class Route:
    """One leaf of the URL map: its full route string, converters and where it came from."""

    route: str
    pattern: URLPattern = field(compare=False)
    converters: dict = field(compare=False)
    origin: str  # "allauth", "admin" or "project"

    @property
    def name(self) -> str:
        return self.pattern.name or self.pattern.lookup_str

    @property
    def view(self) -> str:
        """Dotted path of the view function, e.g. messaging.outbox.views.messages.message_detail."""
        return self.pattern.lookup_str

    @property
    def params(self) -> list[str]:
        return list(self.converters)

    @property
    def is_regex(self) -> bool:
        return self.converters == {} and bool(self.pattern.pattern.regex.groupindex)

    def url(self, values: dict) -> str:
        """The path with each parameter filled from `values` through its own converter."""
        return "/" + _PARAM.sub(
            lambda m: str(self.converters[m["name"]].to_url(values[m["name"]])), self.route
        )


def _origin(resolver: URLResolver) -> str:
    module = getattr(resolver.urlconf_name, "__name__", "")
    if module.startswith("allauth"):
        return "allauth"
    if resolver.app_name == "admin":
        return "admin"
    return "project"


def walk_urls(patterns=None, prefix: str = "", converters=None, origin=None):
    """Every leaf URL pattern of the project, depth first, with the route and converters of
    the includes above it."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    converters = converters or {}
    for entry in patterns:
        here = {**converters, **entry.pattern.converters}
        if isinstance(entry, URLResolver):
            yield from walk_urls(
                entry.url_patterns,
                prefix + str(entry.pattern),
                here,
                origin or _origin(entry),
            )
        else:
            yield Route(prefix + str(entry.pattern), entry, here, origin or "project")


def is_static(route: Route) -> bool:
    return route.view.startswith(("django.views.static", "django.contrib.staticfiles"))


def swept_routes() -> list[Route]:
    """The project's own URLs (see the module docstring for what is left out and why)."""
    routes = []
    for route in walk_urls():
        # allauth: only the signed-in user's own account, its keys are its own. admin: staff
        # with two-factor only, every team by design, tested in test_admin_access.py. static:
        # files from the build, never team data.
        if route.origin in ("allauth", "admin") or is_static(route):
            continue
        # Our URLs are path() routes; a regex route would hide its parameters from the fill.
        assert not route.is_regex, f"{route.route}: use path() so the sweep can fill it"
        routes.append(route)
    return routes


_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>[^()]*\)")


def regex_url(route: Route) -> str:
    """A path for a re_path() route (allauth's and the admin's have a few): each named group
    filled with the first sample value that makes the path resolve back to the same view."""
    for sample in ("messaging", "1-key", "1"):
        path = "/" + _GROUP.sub(sample, route.route).replace("^", "").replace("$", "")
        try:
            if resolve(path).func == route.pattern.callback:
                return path
        except Exception:  # noqa: S112 - a path that does not resolve: try the next sample
            continue
    pytest.fail(f"No sample value fills {route.route}")


def admin_object(route: Route, name: str, user) -> str:
    """The admin names rows by primary key: a real row of the route's model."""
    parts = route.route.split("/")
    if parts[1] == "r":  # view_on_site: /admin/r/<content type>/<object>/
        return "1"
    if parts[1] == "auth" or name == "id":
        return str(user.pk)
    row = apps.get_model(parts[1], parts[2]).objects.order_by("pk").first()
    return str(row.pk if row else 1)


def url_for(route: Route, acme: Acme, user) -> str:
    """A path for any route of the URL map, naming real objects: Acme's for our own URLs, a
    real row for the admin's, sample values for allauth's keys."""
    if route.is_regex:
        return regex_url(route)
    values = {}
    for name in route.params:
        if route.origin == "admin":
            values[name] = admin_object(route, name, user)
        elif route.origin == "allauth":
            values[name] = bogus(route, name)
        else:
            values[name] = acme.candidates(route, name)[0]
    return route.url(values)


# --- Acme, and the people who must not see it --------------------------------------------------

ACME_TEXT = "Quarterly figures, for Acme eyes only"
ACME_FAILED_TEXT = "Board meeting moved to Thursday"
ACME_RECIPIENT = "+16505559876"
ACME_FAILED_RECIPIENT = "+16505559877"
# Not a number of the demo world, whose table the dashboard shows everyone in demo mode.
ACME_NUMBER = "+16505550142"
ACME_LINE = "Acme front desk"
ACME_FILE = "quarterly-plan.jpg"
ACME_DRAFT = "draft-secret.jpg"
ACME_INVITEE = "newhire@example.org"


@dataclass
class Acme:
    team: Team
    messages: list[OutboundMessage]
    attachments: list[Attachment]
    drafts: list[DraftAttachment]
    connection: object
    number: object
    members: list[Membership]
    invitation: object
    markers: list[str]
    conversations: list = None
    inbox_files: list = None
    notes: list = None
    contacts: list = None
    imports: list = None
    templates: list = None
    template_files: list = None
    webhooks: list = None
    deliveries: list = None
    api_keys: list = None
    campaigns: list = None

    def values(self, route: Route) -> list[dict]:
        """Ways to fill `route` with Acme's objects: one dict per combination to request."""
        options = {name: self.candidates(route, name) for name in route.params}
        combos = [{}]
        for name, values in options.items():
            combos = [{**c, name: v} for c in combos for v in values]
        return combos

    def candidates(self, route: Route, name: str) -> list:
        module = route.view.rsplit(".", 1)[0]
        by_name = {
            "slug": [self.team.slug],
            "member_id": [m.pk for m in self.members],
            "invitation_id": [self.invitation.pk],
            "key": [d.key for d in self.drafts],
            "token": [invitations.make_token(self.invitation)],
            "note_id": [n.pk for n in self.notes],
            "file_pk": [f.pk for f in self.template_files],
            "delivery_id": [d.pk for d in self.deliveries],
            "key_id": [k.pk for k in self.api_keys],
        }
        # `pk` means a different model in each views module.
        by_module_pk = {
            "messaging.outbox.views.messages": [m.pk for m in self.messages],
            "messaging.outbox.views.attachments": [a.pk for a in self.attachments],
            "messaging.links.views": [self.connection.pk],
            "messaging.inbox.views": [c.pk for c in self.conversations],
            "messaging.contacts.views.contacts": [c.pk for c in self.contacts],
            "messaging.contacts.views.imports": [j.pk for j in self.imports],
            "messaging.message_templates.views": [t.pk for t in self.templates],
            # The compose room's views name a template by pk (its files).
            "messaging.compose.views": [t.pk for t in self.templates],
            "messaging.hooks.views": [w.pk for w in self.webhooks],
            "messaging.campaigns.views": [c.pk for c in self.campaigns],
            "messaging.api.views.campaigns": [c.pk for c in self.campaigns],
        }
        # The API's views share one module: `pk` follows the view's resource.
        api = "messaging.api.views.resources."
        by_api_view = {
            "Message": [m.pk for m in self.messages],
            "Conversation": [c.pk for c in self.conversations],
            "Contact": [c.pk for c in self.contacts],
            "Import": [j.pk for j in self.imports],
        }
        if name == "pk" and route.view.startswith(api):
            view = route.view[len(api) :]
            return next(pks for prefix, pks in by_api_view.items() if view.startswith(prefix))
        if name == "pk" and module in by_module_pk:
            return by_module_pk[module]
        if name == "key" and module == "messaging.inbox.views":
            return [f.key for f in self.inbox_files]
        if name in by_name:
            return by_name[name]
        pytest.fail(
            f"The isolation sweep does not know how to fill <{name}> of {route.route} "
            f"({route.view}): add the Acme object it names to Acme.candidates."
        )


def bogus(route: Route, name: str):
    """A value of the right shape that names nothing."""
    converter = type(route.converters[name]).__name__
    return {
        "IntConverter": 987654321,
        "UUIDConverter": uuid.UUID(int=12345),
        "SlugConverter": "no-such-team-anywhere",
    }.get(converter, "no-such-thing")


def upload(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, samples.jpeg(64, 48), content_type="image/jpeg")


def use_private_media(tmp_path, settings) -> None:
    """Store attachments in the test's own folder, so nothing leaks between tests."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "media", "base_url": None},
        },
    }


@pytest.fixture(autouse=True)
def _private_media(tmp_path, settings):
    use_private_media(tmp_path, settings)


@pytest.fixture
def acme(team, alice, bob, alice_client) -> Acme:
    return build_acme(team, alice, bob, alice_client)


def build_acme(team, alice, bob, alice_client) -> Acme:
    """Acme with one of everything a URL can name, made through the app's own pages where it
    has them: a queued message with a photo (and its thumbnail), a failed message, a draft
    upload, a shared RingCentral link and its number, members and a pending invitation."""
    connection = make_connection(team, alice, shared=True, extension_name=ACME_LINE)
    number = make_number(connection, ACME_NUMBER)

    draft = alice_client.post(
        "/messages/compose/upload/?form=7a3f1e2d-0c4b-4e8a-9b6d-5f2e1a0c3b7d",
        {"file": upload(ACME_DRAFT)},
    )
    assert draft.status_code == 201, draft.content
    sent = alice_client.post(
        "/messages/compose/",
        {
            "sender": str(number.pk),
            "to": ACME_RECIPIENT,
            "text": ACME_TEXT,
            "mode": "separate",
            "fit_images": "on",
            "attachments": [upload(ACME_FILE)],
        },
    )
    assert sent.status_code == 302, sent.content[:2000]
    queued = OutboundMessage.objects.get(team=team, text=ACME_TEXT)
    failed = make_message(
        number,
        alice,
        to=(ACME_FAILED_RECIPIENT,),
        text=ACME_FAILED_TEXT,
        status=MessageStatus.FAILED,
        error_reason="Refused",
    )
    owner = team.memberships.get(user=alice)
    invitation = invitations.create(owner, ACME_INVITEE, Role.SENDER)
    attachments = list(Attachment.objects.filter(message__team=team))
    drafts = list(DraftAttachment.objects.filter(team=team))
    assert attachments and attachments[0].thumbnail and drafts and drafts[0].thumbnail

    markers = [
        "Acme",
        alice.email,
        bob.email,
        ACME_TEXT,
        ACME_FAILED_TEXT,
        ACME_LINE,
        ACME_FILE,
        ACME_DRAFT,
        ACME_INVITEE,
    ]
    for phone in (ACME_NUMBER, ACME_RECIPIENT, ACME_FAILED_RECIPIENT):
        # E.164 and the national ways pages format a number.
        markers += [phone, f"{phone[2:5]}-{phone[5:8]}-{phone[8:]}", f"{phone[5:8]}-{phone[8:]}"]
    for stored in (*attachments, *drafts):
        markers += [stored.file.name, stored.thumbnail.name]
    conversation, received, note = acme_conversation(connection, alice)
    markers += [ACME_RECEIVED_TEXT, ACME_NOTE, ACME_RECEIVED_FROM, received.file.name]
    contact, job = acme_contacts(team, alice_client)
    markers += [ACME_CONTACT, ACME_CONTACT_FILE, job.stored_name]
    template, template_file = acme_template(team, alice_client)
    markers += [ACME_TEMPLATE, ACME_TEMPLATE_FILE, template_file.file.name]
    webhook, delivery = acme_webhook(team, owner)
    markers += [ACME_WEBHOOK_URL, delivery.event_id]
    api_key = api_keys.create_key(owner, name="Acme booking system", role=Role.SENDER)
    markers += ["Acme booking system", api_key.api_key.prefix, api_key.secret]
    campaign = acme_campaign(alice_client, number)
    markers += [ACME_CAMPAIGN]
    return Acme(
        team=team,
        messages=[queued, failed],
        attachments=attachments,
        drafts=drafts,
        connection=connection,
        number=number,
        members=[team.memberships.get(user=bob), owner],
        invitation=invitation,
        markers=markers,
        conversations=[conversation],
        inbox_files=[received],
        notes=[note],
        contacts=[contact],
        imports=[job],
        templates=[template],
        template_files=[template_file],
        webhooks=[webhook],
        deliveries=[delivery],
        api_keys=[api_key.api_key],
        campaigns=[campaign],
    )


ACME_TEMPLATE = "Acme renewal notice"
ACME_TEMPLATE_FILE = "renewal-terms.jpg"


def acme_template(team, client):
    """A team template of Acme's with a file, made through its pages."""
    from messaging.models import MessageTemplate

    made = client.post(
        "/templates/new/",
        {
            "name": ACME_TEMPLATE,
            "text": "Hi {first_name}",
            "missing_policy": "fallback",
            "scope": "team",
        },
    )
    assert made.status_code == 302, made.content[:2000]
    template = MessageTemplate.objects.get(team=team)
    added = client.post(
        f"/templates/{template.pk}/files/", {"attachments": [upload(ACME_TEMPLATE_FILE)]}
    )
    assert added.status_code == 302
    return template, template.attachments.get()


ACME_WEBHOOK_URL = "https://hooks.acme.example/portal-events"


def acme_webhook(team, owner):
    """An outgoing webhook endpoint of Acme's with one delivery in its log."""
    webhook = WebhookEndpoint(team=team, url=ACME_WEBHOOK_URL, events=["message.sent"])
    webhook.secret = "whsec_" + "A" * 32
    webhook.save()
    delivery = WebhookDelivery.objects.create(
        endpoint=webhook,
        event_id=hook_delivery.new_event_id(),
        event_type="message.sent",
        payload={"type": "message.sent", "data": {}},
        status="succeeded",
    )
    return webhook, delivery


ACME_CONTACT = "Zelda Acmeclient"
ACME_CONTACT_FILE = "acme-customers.csv"


def acme_contacts(team, client):
    """A contact of Acme's with a tag, and an uploaded import waiting for its columns."""
    from messaging.models import Contact, ImportJob

    made = client.post(
        "/contacts/new/",
        {"name": ACME_CONTACT, "numbers": "+16505559879", "tags": "acme-vip"},
    )
    assert made.status_code == 302, made.content[:2000]
    uploaded = client.post(
        "/contacts/import/",
        {
            "file": SimpleUploadedFile(
                ACME_CONTACT_FILE, f"Name,Phone\n{ACME_CONTACT},6505559879\n".encode()
            )
        },
    )
    assert uploaded.status_code == 302, uploaded.content[:2000]
    return Contact.objects.get(team=team), ImportJob.objects.get(team=team)


ACME_CAMPAIGN = "Acme spring recall"


def acme_campaign(client, number):
    """A campaign of Acme's, not started, made through its page."""
    from messaging.models import Campaign

    made = client.post(
        "/campaigns/new/",
        {
            "name": ACME_CAMPAIGN,
            "senders": [str(number.pk)],
            "source": "file",
            "list_file": SimpleUploadedFile("recall.csv", b"Name,Phone\nZed,6505559877\n"),
            "text": "Hello {name}",
            "missing_policy": "skip",
        },
    )
    assert made.status_code == 302, made.content[:2000]
    return Campaign.objects.get(name=ACME_CAMPAIGN)


ACME_RECEIVED_FROM = "+16505559878"
ACME_RECEIVED_TEXT = "Here is the signed contract for Acme"
ACME_NOTE = "Acme internal: call legal first"


def acme_conversation(connection, author):
    """A received MMS of Acme's (its photo fetched and stored) in a conversation with a note."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from messaging.inbox import storing
    from messaging.models import ConversationNote, FileState, InboxFile
    from messaging.ringcentral.records import parse_message

    record = parse_message(
        {
            "id": 8_100_000_001,
            "type": "SMS",
            "direction": "Inbound",
            "from": {"phoneNumber": ACME_RECEIVED_FROM},
            "to": [{"phoneNumber": ACME_NUMBER}],
            "subject": ACME_RECEIVED_TEXT,
            "messageStatus": "Received",
            "attachments": [
                {
                    "id": "1",
                    "type": "MmsAttachment",
                    "contentType": "image/jpeg",
                    "fileName": "contract.jpg",
                }
            ],
        }
    )
    entry = storing.store_record(connection, record, source="webhook").entry
    stored = default_storage.save(f"inbox/{connection.team_id}/acme", ContentFile(samples.jpeg()))
    thumb = default_storage.save(
        f"inbox/{connection.team_id}/acme-thumb", ContentFile(samples.jpeg())
    )
    InboxFile.objects.filter(message=entry).update(
        state=FileState.STORED, file=stored, thumbnail=thumb, content_type="image/jpeg", size=10
    )
    note = ConversationNote.objects.create(
        conversation=entry.conversation, author=author, text=ACME_NOTE
    )
    return entry.conversation, InboxFile.objects.get(message=entry), note


@dataclass
class Persona:
    name: str
    client: Client
    own_team: Team


@pytest.fixture
def personas(acme, charlie) -> list[Persona]:
    olga = make_user("olga@globex.example")
    vera = make_user("vera@globex.example")
    sam = make_user("sam@globex.example")
    globex = teams.create_team(olga, "Globex")
    Membership.objects.create(team=globex, user=vera, role=Role.VIEWER)
    Membership.objects.create(team=globex, user=sam, role=Role.SENDER)
    # Globex has its own link, number and message, so its pages are not empty and compose is
    # open to sam (the `?again=` lookup is reached only when the form can be shown).
    line = make_connection(globex, sam, shared=True, extension_id="201", account_id="9002")
    make_message(make_number(line, "+16505550200"), sam, to=("+16505550222",), text="Globex")
    personal = Team.objects.get(memberships__user=charlie)
    return [
        Persona("charlie (outsider)", client_for(Client, charlie, personal), personal),
        Persona("vera (viewer of Globex)", client_for(Client, vera, globex), globex),
        Persona("sam (sender of Globex)", client_for(Client, sam, globex), globex),
        Persona("olga (owner of Globex)", client_for(Client, olga, globex), globex),
    ]


# --- What the answers may contain ----------------------------------------------------------------

# A form that would change something on most of the swept URLs if the view let it through.
HOSTILE_FORM = {
    "name": "Taken over",
    "role": Role.ADMIN,
    "email": "intruder@example.com",
    "shared": "1",
    "text": "sent by an intruder",
    "to": "+16505550999",
    "mode": "separate",
}

# URLs whose parameter is a capability rather than a reference: holding the signed link is what
# grants access, so the page names the team and the inviter to whoever opens it (the invitee may
# not have an account yet). Signed in as someone else, it must refuse (403) and change nothing,
# and show no Acme data beyond what the invitation email itself says.
CAPABILITY_URLS = {
    "invitation_accept": {
        "status": {403},
        "may_show": {"Acme", "alice@example.com", ACME_INVITEE},
    },
}


def body_of(response) -> str:
    if getattr(response, "streaming", False):
        content = b"".join(response.streaming_content)
    else:
        content = response.content
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    return headers + "\n" + content.decode("utf-8", "replace")


def leaks(response, markers, allowed=()) -> list[str]:
    text = body_of(response)
    return [m for m in markers if m not in allowed and m in text]


def snapshot() -> dict:
    """Every row of every table the app owns, and the accounts around them."""
    models = [
        *apps.get_app_config("messaging").get_models(),
        get_user_model(),
        EmailAddress,
        Authenticator,
    ]
    return {model._meta.label: list(model.objects.order_by("pk").values()) for model in models}


def changed_tables(before: dict, after: dict) -> list[str]:
    """Tables whose rows changed. The audit log may grow by entries of the personas' own
    teams (an export they made of their own team is recorded); an entry for another team's
    data, or any change to an existing entry, counts."""
    changed = []
    for label in before:
        if label == "messaging.AuditEntry":
            old = before[label]
            new = after[label]
            ids = {row["team_id"] for row in new[len(old) :]}
            if new[: len(old)] != old or ids & _acme_team_ids(before):
                changed.append(label)
        elif before[label] != after[label]:
            changed.append(label)
    return changed


def _acme_team_ids(rows: dict) -> set[int]:
    return {team["id"] for team in rows["messaging.Team"] if team["name"] == "Acme"}


def request(client: Client, method: str, url: str, data=None):
    if method == "GET":
        return client.get(url, data)
    return client.post(url, data)


# --- The sweep ----------------------------------------------------------------------------------

# The walk must at least find these; a refactoring that hides them from the resolver would
# otherwise shrink the sweep without anyone noticing.
EXPECTED_OBJECT_URLS = {
    "team_page",
    "team_rename",
    "team_leave",
    "team_transfer",
    "member_role",
    "member_remove",
    "invitation_create",
    "invitation_resend",
    "invitation_revoke",
    "invitation_accept",
    "ringcentral_share",
    "ringcentral_sync",
    "ringcentral_disconnect",
    "message_detail",
    "message_cancel",
    "message_retry",
    "compose_upload_delete",
    "compose_upload_thumbnail",
    "attachment",
    "attachment_thumbnail",
    "contact_detail",
    "contact_edit",
    "contact_merge",
    "contact_delete",
    "contact_import",
    "contact_import_progress",
    "contact_import_problems",
    "contact_import_resume",
}


def test_the_walk_finds_every_url_of_the_project():
    routes = swept_routes()
    names = {r.name for r in routes}
    with_params = {r.name for r in routes if r.params}

    assert with_params >= EXPECTED_OBJECT_URLS
    assert {"outbox", "outbox_status", "compose", "dashboard", "ringcentral_webhook"} <= names
    everything = list(walk_urls())
    assert any(r.origin == "allauth" for r in everything)
    assert any(r.origin == "admin" for r in everything)


def check_refusal(persona, route, method, values, acme, problems) -> None:
    url = route.url(values)
    assert resolve(url).route == route.route, url
    response = request(persona.client, method, url, HOSTILE_FORM)
    where = f"{persona.name} {method} {url} ({route.name})"
    capability = CAPABILITY_URLS.get(route.name)
    if capability:
        if response.status_code not in capability["status"]:
            problems.append(f"{where}: {response.status_code}, expected {capability['status']}")
        allowed = capability["may_show"]
    else:
        allowed = ()
        if response.status_code == 405:
            # Refused by method before any lookup: the same for an object that does not exist.
            nothing = {name: bogus(route, name) for name in values}
            control = request(persona.client, method, route.url(nothing), HOSTILE_FORM)
            if control.status_code != 405:
                problems.append(f"{where}: 405 here but {control.status_code} for no object")
        elif response.status_code != 404:
            problems.append(f"{where}: {response.status_code}, expected 404")
    found = leaks(response, acme.markers, allowed)
    if found:
        problems.append(f"{where}: shows {found}")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_another_teams_objects_are_404_for_every_url_and_nothing_changes(acme, personas, method):
    routes = [r for r in swept_routes() if r.params]
    before = snapshot()
    problems: list[str] = []
    requests_made = 0

    for persona in personas:
        for route in routes:
            for values in acme.values(route):
                check_refusal(persona, route, method, values, acme, problems)
                requests_made += 1

    assert not problems, "\n".join(problems)
    assert not changed_tables(before, snapshot())
    assert requests_made >= len(personas) * len(EXPECTED_OBJECT_URLS)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_acme_objects_under_my_own_team_are_no_better_than_nothing(acme, personas, method):
    """/teams/<my team>/members/<an Acme member>/…: the team part is the persona's own, the
    object is Acme's. The answer must be the one for an object that does not exist at all."""
    routes = [r for r in swept_routes() if "slug" in r.params and len(r.params) > 1]
    assert {r.name for r in routes} >= {
        "member_role",
        "member_remove",
        "invitation_resend",
        "invitation_revoke",
    }
    before = snapshot()
    problems: list[str] = []

    for persona in personas:
        for route in routes:
            for values in acme.values(route):
                mixed = {**values, "slug": persona.own_team.slug}
                nothing = {
                    name: (persona.own_team.slug if name == "slug" else bogus(route, name))
                    for name in values
                }
                response = request(persona.client, method, route.url(mixed), HOSTILE_FORM)
                control = request(persona.client, method, route.url(nothing), HOSTILE_FORM)
                where = f"{persona.name} {method} {route.url(mixed)}"
                if response.status_code != control.status_code:
                    problems.append(
                        f"{where}: {response.status_code}, but {control.status_code} for no object"
                    )
                if response.status_code not in (403, 404, 405):
                    problems.append(f"{where}: {response.status_code}")
                found = leaks(response, acme.markers)
                if found:
                    problems.append(f"{where}: shows {found}")

    assert not problems, "\n".join(problems)
    assert not changed_tables(before, snapshot())


def team_less_query(acme: Acme) -> dict:
    """Acme's ids and words, in every query parameter a current-team page reads."""
    from messaging.outbox.paging import encode_cursor

    ids = ",".join(str(m.pk) for m in acme.messages)
    return {
        "ids": ids,
        "again": str(acme.messages[0].pk),
        # A word of Acme's text, not the text itself: the search box shows what was typed,
        # and a leak would show the whole text.
        "q": "Quarterly",
        "folder": "failed",
        "after": encode_cursor(acme.messages[0]),
        "team": acme.team.slug,
        "state": "x",
    }


def team_less_form(acme: Acme) -> dict:
    """A form naming Acme's objects in every field a current-team endpoint reads."""
    return {
        "team": acme.team.slug,
        "sender": str(acme.number.pk),
        # Not an Acme number: the form shows back what was typed.
        "to": "+16505550999",
        "text": "hello",
        "mode": "separate",
        "uploads": [str(d.key) for d in acme.drafts],
        "member": str(acme.members[0].pk),
        "ids": ",".join(str(m.pk) for m in acme.messages),
    }


def test_current_team_pages_show_nothing_of_acme_whatever_they_are_asked(acme, personas):
    routes = [r for r in swept_routes() if not r.params]
    assert {r.name for r in routes} >= {
        "dashboard",
        "outbox",
        "outbox_status",
        "compose",
        "compose_check",
        "compose_upload",
        "team_detail",
        "team_list",
        "team_switch",
        "ringcentral",
        "ringcentral_connect",
        "ringcentral_callback",
    }
    query, form = team_less_query(acme), team_less_form(acme)
    before = snapshot()
    problems: list[str] = []

    for persona in personas:
        for route in routes:
            url = route.url({})
            for method, data in (("GET", query), ("POST", form)):
                response = request(persona.client, method, url, data)
                where = f"{persona.name} {method} {url}"
                if response.status_code >= 500:
                    problems.append(f"{where}: {response.status_code}")
                found = leaks(response, acme.markers)
                if found:
                    problems.append(f"{where}: shows {found}")

    assert not problems, "\n".join(problems)
    assert not changed_tables(before, snapshot())


def test_live_statuses_answer_nothing_for_acme_ids(acme, personas):
    ids = ",".join(str(m.pk) for m in acme.messages)
    for persona in personas:
        response = persona.client.get("/messages/status/", {"ids": ids})
        assert response.status_code == 200, persona.name
        assert response.json()["messages"] == [], persona.name


def test_send_again_with_an_acme_message_is_refused(acme, personas):
    again = f"/messages/compose/?again={acme.messages[0].pk}"
    answers = {p.name: p.client.get(again).status_code for p in personas}
    # sam and olga can open compose in Globex (its link is shared), so the message lookup is
    # reached: 404. vera is a viewer (403 for compose itself); charlie has no link, so the form
    # is not shown and nothing is read.
    assert answers == {
        "charlie (outsider)": 200,
        "vera (viewer of Globex)": 403,
        "sam (sender of Globex)": 404,
        "olga (owner of Globex)": 404,
    }


def test_the_sweep_would_see_a_leak(acme, alice):
    """A control for the sweep itself: a member of Acme gets the pages, with Acme's data."""
    client = client_for(Client, alice, acme.team)
    page = client.get(f"/messages/{acme.messages[0].pk}/")
    assert page.status_code == 200
    assert ACME_TEXT in leaks(page, acme.markers)
    upload_answer = client.get(f"/messages/compose/upload/{acme.drafts[0].key}/thumbnail/")
    assert upload_answer.status_code == 200
