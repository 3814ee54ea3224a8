"""RingCentral tokens at rest: encrypted in the database and in dumps, absent from logs and
representations, and re-encryptable with a new key."""

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection as db_connection

from messaging.core import crypto
from messaging.links import tokens
from messaging.links.tokens import client_for
from messaging.models import RingCentralConnection
from messaging.ringcentral import errors, oauth
from tests.rc_fixtures import expire_access_token, link_directly, link_through_browser

ACCESS = "plain-access-token-0123456789abcdef"
REFRESH = "plain-refresh-token-fedcba9876543210"


@pytest.fixture
def stored(team, alice):
    return RingCentralConnection.objects.create(
        team=team,
        linked_by=alice,
        account_id="400100",
        extension_id="400200",
        extension_name="Front desk",
        access_token=ACCESS,
        refresh_token=REFRESH,
    )


def test_tokens_are_stored_encrypted_and_read_back_in_plain(stored):
    row = RingCentralConnection.objects.values(
        "access_token_ciphertext", "refresh_token_ciphertext"
    ).get(pk=stored.pk)

    assert ACCESS not in row["access_token_ciphertext"]
    assert REFRESH not in row["refresh_token_ciphertext"]
    assert row["access_token_ciphertext"].startswith("gAAAAA")  # a Fernet token
    fresh = RingCentralConnection.objects.get(pk=stored.pk)
    assert (fresh.access_token, fresh.refresh_token) == (ACCESS, REFRESH)


READ_FILES = "import sys\nfor p in sys.argv[1:]: sys.stdout.buffer.write(open(p, 'rb').read())"


@pytest.mark.django_db(transaction=True)
def test_tokens_never_appear_in_plain_text_in_the_database_files(alice, team):
    stored = RingCentralConnection.objects.create(
        team=team,
        linked_by=alice,
        account_id="1",
        extension_id="2",
        access_token=ACCESS,
        refresh_token=REFRESH,
    )
    if db_connection.vendor == "sqlite":
        name = Path(db_connection.settings_dict["NAME"])
        files = [str(p) for p in (name, Path(f"{name}-wal")) if p.exists()]
        # Read in another process: closing any descriptor of a file drops every POSIX lock this
        # process holds on it, including SQLite's, after which another process's connection can
        # think it is the last one and delete the -shm file under this process's feet.
        content = subprocess.run(
            [sys.executable, "-c", READ_FILES, *files], check=True, capture_output=True
        ).stdout
    else:
        # PostgreSQL: read the row exactly as stored, bypassing the model.
        with db_connection.cursor() as cursor:
            cursor.execute(
                "SELECT access_token_ciphertext || refresh_token_ciphertext"
                " FROM messaging_ringcentralconnection WHERE id = %s",
                [stored.pk],
            )
            content = cursor.fetchone()[0].encode()

    # The ciphertext is found, so this looks at the right bytes; the plaintext is not.
    assert stored.access_token_ciphertext.encode() in content
    assert ACCESS.encode() not in content
    assert REFRESH.encode() not in content


def test_dumpdata_shows_only_ciphertext(stored):
    out = io.StringIO()
    call_command("dumpdata", "messaging.ringcentralconnection", stdout=out)

    dump = out.getvalue()
    assert stored.access_token_ciphertext in dump
    assert ACCESS not in dump and REFRESH not in dump


def test_str_repr_and_errors_never_show_tokens(stored):
    tokens = oauth.TokenSet(
        access_token=ACCESS,
        refresh_token=REFRESH,
        access_expires_at=stored.created_at,
        refresh_expires_at=None,
    )
    texts = [str(stored), repr(stored), repr(tokens), str(tokens)]
    texts += [repr(oauth.AuthorizationRequest(url="https://x", state="s", code_verifier=ACCESS))]
    for text in texts:
        assert ACCESS not in text and REFRESH not in text


def test_the_link_flow_and_a_refresh_log_no_token(
    caplog, alice, alice_client, team, emulator, rc_user
):
    caplog.set_level(logging.DEBUG)

    link_through_browser(alice_client, emulator, rc_user)
    connection = RingCentralConnection.objects.get()
    first = (connection.access_token, connection.refresh_token)
    expire_access_token(connection)
    client_for(connection).get_extension()
    connection.refresh_from_db()

    for secret in (*first, connection.access_token, connection.refresh_token):
        assert secret not in caplog.text
    assert "tokens refreshed" in caplog.text


def test_ringcentral_pages_never_render_tokens(alice, alice_client, team, emulator, rc_user):
    connection = link_directly(emulator, team, alice, rc_user)

    page = alice_client.get("/ringcentral/").content.decode()

    assert connection.access_token not in page
    assert connection.refresh_token not in page
    assert connection.access_token_ciphertext not in page


def test_rotate_token_keys_re_encrypts_so_the_old_key_can_be_removed(settings, stored):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [old]
    stored.access_token, stored.refresh_token = ACCESS, REFRESH
    stored.save()
    before = RingCentralConnection.objects.get(pk=stored.pk).access_token_ciphertext

    settings.TOKEN_ENCRYPTION_KEYS = [new]
    with pytest.raises(crypto.TokenDecryptError):
        RingCentralConnection.objects.get(pk=stored.pk).access_token  # noqa: B018

    settings.TOKEN_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_token_keys", stdout=out)
    assert "Re-encrypted the tokens of 1 connection(s)" in out.getvalue()
    assert "0 could not be decrypted" in out.getvalue()

    settings.TOKEN_ENCRYPTION_KEYS = [new]
    after = RingCentralConnection.objects.get(pk=stored.pk)
    assert after.access_token_ciphertext != before
    assert (after.access_token, after.refresh_token) == (ACCESS, REFRESH)


def test_rotate_token_keys_refuses_a_bad_key_without_printing_it(settings, stored):
    settings.TOKEN_ENCRYPTION_KEYS = ["not-a-fernet-key-but-a-secret"]

    with pytest.raises(CommandError) as caught:
        call_command("rotate_token_keys", stdout=io.StringIO())

    assert "Key 1 of 1 in TOKEN_ENCRYPTION_KEYS is not a valid Fernet key" in str(caught.value)
    assert "not-a-fernet-key-but-a-secret" not in str(caught.value)


def test_rotate_token_keys_fails_when_a_row_cannot_be_decrypted(settings, stored):
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    err = io.StringIO()

    with pytest.raises(CommandError, match="1 token set"):
        call_command("rotate_token_keys", stdout=io.StringIO(), stderr=err)

    assert "cannot be decrypted" in err.getvalue()


def test_a_token_written_with_a_removed_key_raises_a_configuration_error_not_a_broken_link(
    settings, alice, team, emulator, rc_user
):
    connection = link_directly(emulator, team, alice, rc_user)
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(crypto.TokenDecryptError) as caught:
        tokens.fresh_access_token(connection.pk)

    # The operator removed a key too early; users must not be told to re-link.
    assert "TOKEN_ENCRYPTION_KEYS" in str(caught.value)
    assert not isinstance(caught.value, errors.RingCentralError)
    connection.refresh_from_db()
    assert connection.status == "linked"


def test_rotate_token_keys_re_encrypts_webhook_verification_tokens(settings, stored):
    from messaging.models import WebhookSubscription

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [old]
    stored.access_token, stored.refresh_token = ACCESS, REFRESH
    stored.save()
    subscription = WebhookSubscription(connection=stored)
    subscription.verification_token = "7.webhook-verification-secret"
    subscription.save()

    settings.TOKEN_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_token_keys", stdout=out)
    assert "and 1 webhook token(s)" in out.getvalue()

    settings.TOKEN_ENCRYPTION_KEYS = [new]
    again = WebhookSubscription.objects.get(pk=subscription.pk)
    assert again.verification_token == "7.webhook-verification-secret"
