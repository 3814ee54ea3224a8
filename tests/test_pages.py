import pytest


@pytest.mark.django_db
def test_welcome_page_renders_for_anonymous_visitors(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Create an account" in response.content


@pytest.mark.django_db
def test_healthz_answers_200_when_database_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": True, "broker": True}


def test_dashboard_says_ringcentral_is_not_linked_yet(alice_client):
    response = alice_client.get("/dashboard/")
    assert response.status_code == 200
    assert b"Acme" in response.content


@pytest.mark.django_db
def test_healthz_answers_503_when_the_broker_is_unreachable(client, monkeypatch):
    from kombu import Connection

    from mmsportal.celery import app

    # Swap the connection factory rather than app.conf: the conf resolves broker_write_url from
    # broker_url, so patching both leaves the dead URL behind for every later test.
    monkeypatch.setattr(
        app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0", connect_timeout=1)
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] is False


def test_csrf_failure_shows_an_explanation_not_a_bare_403(alice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/accounts/logout/")
    assert response.status_code == 403
    assert b"This form has expired" in response.content


@pytest.mark.django_db
def test_pages_load_no_asset_from_another_host(client):
    for url in ("/", "/accounts/login/", "/accounts/signup/"):
        content = client.get(url).content.decode()
        assert "http://" not in content.replace("http://testserver", "")
        assert "https://" not in content
