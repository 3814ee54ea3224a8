"""The client's address behind a reverse proxy (`TRUSTED_PROXY_COUNT`): sign-in limits count per
client, and an X-Forwarded-For the client wrote itself changes nothing."""

import pytest
from django.test import Client, RequestFactory

from messaging.core.addresses import client_ip
from tests.conftest import PASSWORD

PROXY = "10.0.0.2"  # the proxy's own address, as the portal sees every request arrive
ATTACKER = "203.0.113.9"
ALICE = "198.51.100.7"


def through_proxy(client_address: str, forged: str = "") -> dict:
    """What a request that passed one proxy carries: the proxy appended the address it was
    reached from to whatever the client sent."""
    chain = f"{forged}, {client_address}" if forged else client_address
    return {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": chain}


def log_in(client, email, password, meta):
    return client.post("/accounts/login/", {"login": email, "password": password}, **meta)


@pytest.mark.parametrize(
    ("hops", "meta", "expected"),
    [
        (0, {"REMOTE_ADDR": ATTACKER, "HTTP_X_FORWARDED_FOR": ALICE}, ATTACKER),
        (1, through_proxy(ATTACKER), ATTACKER),
        (1, through_proxy(ATTACKER, forged=ALICE), ATTACKER),
        (
            2,
            {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": f"{ALICE}, {ATTACKER}, 10.0.0.1"},
            ATTACKER,
        ),
        # Fewer entries than proxies (the request came in directly) or a value that is no
        # address: the connection's own address.
        (2, {"REMOTE_ADDR": ATTACKER, "HTTP_X_FORWARDED_FOR": ALICE}, ATTACKER),
        (1, {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "not-an-address"}, PROXY),
    ],
)
def test_the_client_is_read_that_many_entries_from_the_right(settings, hops, meta, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", **meta)
    assert client_ip(request) == expected


@pytest.mark.django_db
def test_behind_a_proxy_one_addresss_failures_do_not_lock_out_another_user(settings, alice):
    settings.TRUSTED_PROXY_COUNT = 1
    attacker = Client()
    for attempt in range(11):
        response = log_in(
            attacker, f"nobody{attempt}@example.com", "wrong", through_proxy(ATTACKER)
        )
    assert b"Too many failed login attempts" in response.content  # the attacker is stopped

    response = log_in(Client(), alice.email, PASSWORD, through_proxy(ALICE))
    assert response.status_code == 302 and b"Too many" not in response.content


@pytest.mark.django_db
def test_a_forged_forwarded_address_neither_hides_the_attacker_nor_blames_someone_else(
    settings, alice
):
    settings.TRUSTED_PROXY_COUNT = 1
    attacker = Client()
    for attempt in range(11):
        forged = f"198.51.100.{attempt}"  # a different "client" every time
        response = log_in(
            attacker, f"nobody{attempt}@example.com", "wrong", through_proxy(ATTACKER, forged)
        )
    assert b"Too many failed login attempts" in response.content
    # Alice's own address was among the forged ones; she is not locked out.
    response = log_in(Client(), alice.email, PASSWORD, through_proxy(ALICE))
    assert response.status_code == 302


@pytest.mark.django_db
def test_without_proxies_the_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    attacker = Client()
    for attempt in range(11):
        meta = {"REMOTE_ADDR": ATTACKER, "HTTP_X_FORWARDED_FOR": f"192.0.2.{attempt}"}
        response = log_in(attacker, f"nobody{attempt}@example.com", "wrong", meta)
    assert b"Too many failed login attempts" in response.content
