"""The API against its own OpenAPI schema (schemathesis): generated requests for every
operation, answered without a server error and as the schema says (status codes, content
types, bodies). A few examples per operation here; `make fuzz` runs many more
(API_FUZZ_EXAMPLES)."""

from __future__ import annotations

import itertools
import json
import os

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from messaging.campaigns import creation
from messaging.models import Conversation, Membership, Role
from tests.api_fixtures import FROM, PAT, key_for
from tests.factories import make_message
from tests.tracking_helpers import fresh_limits  # noqa: F401 - fixture

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _load_schema():
    """The schema as /api/v1/schema/ serves it, and the portal as the WSGI app it is run on."""
    from drf_spectacular.generators import SchemaGenerator

    from mmsportal.wsgi import application

    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(document, default=str)))
    loaded.app = application
    return loaded


schema = _load_schema()


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Requests run in the test's own thread and transaction; as Django's test client does, the
    connection is not closed between them."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def secret(api_link, team, alice, settings, fresh_limits):  # noqa: F811
    """An admin key of a team with a link, a message, a contact and a conversation."""
    settings.API_THROTTLE_RATE = "100000/min"
    return key_for(team, alice, Role.ADMIN).secret


@pytest.fixture
def known_ids(api_link, team, alice):
    """Ids that name something, by the first part of the path after /api/v1/."""
    from messaging.contacts import book

    _, number = api_link
    message = make_message(number, alice, to=(PAT,))
    contact = book.save(
        team, None, fields={"name": "Pat"}, numbers=[(PAT, "")], tag_names=["north"]
    )
    conversation = Conversation.objects.create(
        team=team, connection=number.connection, team_number=FROM, contact_key=PAT,
        last_message_at=number.synced_at,
    )  # fmt: skip
    campaign = creation.create(
        Membership.objects.get(team=team, user=alice),
        creation.Request(name="Spring", sender_ids=[FROM], text="Hi {name}", tag="north"),
    )
    return {
        "messages": message.pk,
        "contacts": contact.pk,
        "conversations": conversation.pk,
        "campaigns": campaign.pk,
    }


CALLS = itertools.count()


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_schema_says(case, secret, known_ids):
    # Every other generated id is replaced by one that exists, so reads, changes and replies
    # are exercised too, not only their 404s.
    parameters = case.path_parameters or {}
    resource = case.path.split("/")[3]
    if "id" in parameters and resource in known_ids and next(CALLS) % 2:
        parameters["id"] = known_ids[resource]
    # And every other message sent from a number the key may use, to a real number.
    if case.path == "/api/v1/messages" and isinstance(case.body, dict) and next(CALLS) % 2:
        case.body.update({"from": FROM, "to": [PAT]})
    case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)
