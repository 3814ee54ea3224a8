"""Fixtures of the REST API tests: a api_link team, keys of each role, and a client that sends a
key the way an outside system does (`Authorization: Bearer <key>`)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from messaging.api import keys
from messaging.models import Membership, Role
from tests.rc_fixtures import NUMBER_SMS_MMS
from tests.tracking_helpers import link_sender

PAT = "+16505550150"
SAM = "+16505550151"
FROM = NUMBER_SMS_MMS


class ApiClient:
    """The Django test client with a key on every request and JSON by default."""

    def __init__(self, secret: str | None):
        self.client = Client()
        self.secret = secret

    def _headers(self, headers):
        merged = dict(headers or {})
        if self.secret is not None:
            merged.setdefault("Authorization", f"Bearer {self.secret}")
        return merged

    def get(self, path, params=None, headers=None):
        return self.client.get(path, params or {}, headers=self._headers(headers))

    def post(self, path, data=None, headers=None, **extra):
        return self.client.post(
            path,
            json.dumps(data if data is not None else {}),
            content_type="application/json",
            headers=self._headers(headers),
            **extra,
        )

    def post_form(self, path, data, headers=None):
        return self.client.post(path, data, headers=self._headers(headers))

    def patch(self, path, data, headers=None):
        return self.client.patch(
            path, json.dumps(data), content_type="application/json", headers=self._headers(headers)
        )

    def delete(self, path, headers=None):
        return self.client.delete(path, headers=self._headers(headers))

    def raw(self, method, path, body: bytes, content_type: str, headers=None, **extra):
        return getattr(self.client, method)(
            path, body, content_type=content_type, headers=self._headers(headers), **extra
        )


def key_for(team, user, role=Role.SENDER, name="Booking system"):
    """A key made by `user` (an admin or the owner of `team`)."""
    membership = Membership.objects.select_related("team", "user").get(team=team, user=user)
    return keys.create_key(membership, name=name, role=role)


@pytest.fixture
def api_link(emulator, team, alice, rc_user):
    connection, number = link_sender(emulator, team, alice, rc_user)
    connection.shared_with_team = True
    connection.save()
    return connection, number


@pytest.fixture
def sender_api(team, alice):
    return ApiClient(key_for(team, alice, Role.SENDER).secret)


@pytest.fixture
def viewer_api(team, alice):
    return ApiClient(key_for(team, alice, Role.VIEWER).secret)


@pytest.fixture
def admin_api(team, alice):
    return ApiClient(key_for(team, alice, Role.ADMIN).secret)


@pytest.fixture
def outsider_api(charlie):
    """charlie's key for his own (personal) team."""
    team = Membership.objects.get(user=charlie).team
    return ApiClient(key_for(team, charlie, Role.ADMIN).secret)


def problem(response) -> dict:
    assert response["Content-Type"].startswith("application/problem+json"), (
        response.status_code,
        response["Content-Type"],
        response.content[:300],
    )
    document = response.json()
    assert {"type", "title", "status", "detail"} <= set(document)
    assert document["status"] == response.status_code
    return document
