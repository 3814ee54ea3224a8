"""`manage.py send_message`: the compose page's checks and outbox, from the command line.

Bad input is refused with a message naming the option and nothing is queued. `--wait` is run
against a real worker process and the emulator; one run goes through a real `manage.py`
subprocess to check what an operator sees: the exit status, stderr, no traceback.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from messaging.links import connections
from messaging.models import Membership, MessageStatus, OutboundMessage, Role
from messaging.ringcentral.emulator import Fault
from mmsportal.celery import app as celery_app
from tests import media_samples as samples
from tests.conftest import make_user
from tests.rc_fixtures import NUMBER_FAX, NUMBER_SMS_MMS, link_directly, shared_emulator
from tests.test_send_task import clear_shared_limiter, posts
from tests.worker import celery_worker, subprocess_env

TO = "+16505550191"


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("command-media")


@pytest.fixture(scope="module")
def emu():
    with shared_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def worker(django_db_setup, emu, media_dir):
    with celery_worker(
        concurrency=1,
        DEMO_EMULATOR_URL=emu.base_url,
        RINGCENTRAL_SERVER_URL=emu.base_url,
        MEDIA_ROOT=str(media_dir),
    ) as process:
        yield process


@pytest.fixture
def linked(emu, team, alice, settings, media_dir):
    """Acme (alice owns it, bob is a sender) with alice's RingCentral link shared."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": media_dir, "base_url": None},
        },
    }
    emu.reset()
    clear_shared_limiter()
    connection = link_directly(emu, team, alice, emu.rc_user)
    connections.sync_numbers(connection)
    connections.set_shared(connection, True)
    emu.reset()
    return connection


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("send_message", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert OutboundMessage.objects.count() == 0, "bad input queues nothing"
    return str(caught.value)


# --- queueing ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queues_one_message_per_recipient_as_the_compose_page_does(linked, bob):
    out, _ = run(
        "--user", "bob@example.com", "--team", "acme",
        "--from", "(650) 555-0140", "--to", "+1 650 555 0191", "--to", "650-555-0192, 6505550193",
        "--text", "Office closed Monday",
    )  # fmt: skip
    messages = OutboundMessage.objects.order_by("pk")
    assert [m.recipients.get().phone_number for m in messages] == [
        "+16505550191",
        "+16505550192",
        "+16505550193",
    ]
    assert {(m.created_by, m.from_number, m.status) for m in messages} == {
        (bob, NUMBER_SMS_MMS, MessageStatus.QUEUED)
    }
    assert out.count("Queued message") == 3 and "+1 650-555-0191" in out


@pytest.mark.django_db
def test_group_makes_one_message_to_everyone(linked):
    run(
        "--user", "alice@example.com", "--team", "acme", "--from", NUMBER_SMS_MMS,
        "--to", "+16505550191", "--to", "+16505550192", "--group", "--text", "Lunch?",
    )  # fmt: skip
    message = OutboundMessage.objects.get()
    assert message.is_group and message.recipients.count() == 2


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unknown_user_is_refused(linked):
    assert "No active user with the email address “nobody@example.com”" in refused(
        "--user", "nobody@example.com", "--from", NUMBER_SMS_MMS, "--to", TO, "--text", "x"
    )


@pytest.mark.django_db
def test_several_teams_need_team(linked):
    # Alice has her personal team and Acme.
    message = refused(
        "--user", "alice@example.com", "--from", NUMBER_SMS_MMS, "--to", TO, "--text", "x"
    )
    assert "belongs to several teams" in message and "acme" in message and "--team" in message


@pytest.mark.django_db
def test_a_team_the_user_is_not_in_is_refused(linked, charlie):
    message = refused(
        "--user", "charlie@example.com", "--team", "acme",
        "--from", NUMBER_SMS_MMS, "--to", TO, "--text", "x",
    )  # fmt: skip
    assert "is not a member of a team “acme”" in message


@pytest.mark.django_db
def test_a_viewer_may_not_send(linked, team):
    viewer = make_user("victor@example.com")
    Membership.objects.create(team=team, user=viewer, role=Role.VIEWER)
    message = refused(
        "--user", "victor@example.com", "--team", "acme",
        "--from", NUMBER_SMS_MMS, "--to", TO, "--text", "x",
    )  # fmt: skip
    assert "is a viewer in “acme”; sending needs the sender role" in message


@pytest.mark.django_db
def test_a_number_the_user_may_not_send_from_is_refused_with_their_numbers(linked):
    message = refused(
        "--user", "alice@example.com", "--team", "acme",
        "--from", "+16505550100", "--to", TO, "--text", "x",
    )  # fmt: skip
    assert "--from: Choose one of your numbers to send from." in message
    assert "+1 650-555-0140" in message and "+1 650-555-0141" in message


@pytest.mark.django_db
def test_a_fax_number_is_refused(linked):
    message = refused(
        "--user", "alice@example.com", "--team", "acme",
        "--from", NUMBER_FAX, "--to", TO, "--text", "x",
    )  # fmt: skip
    assert "is a fax number" in message


@pytest.mark.django_db
def test_bad_recipients_and_long_text_are_each_named(linked):
    message = refused(
        "--user", "alice@example.com", "--team", "acme", "--from", NUMBER_SMS_MMS,
        "--to", "12345", "--to", "not a number", "--text", "x" * 1001,
    )  # fmt: skip
    assert "--to: “12345”" in message
    assert "--to: “not a number” is not a phone number." in message
    assert "--text: The text is 1,001 characters long" in message


@pytest.mark.django_db
def test_a_missing_file_and_too_many_files_are_refused(linked, tmp_path):
    missing = refused(
        "--user", "alice@example.com", "--team", "acme", "--from", NUMBER_SMS_MMS,
        "--to", TO, "--attach", str(tmp_path / "nope.jpg"),
    )  # fmt: skip
    assert f"--attach: “{tmp_path / 'nope.jpg'}” does not exist." in missing

    paths = []
    for i in range(11):
        path = tmp_path / f"card{i}.vcf"
        path.write_bytes(b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Card %d\r\nEND:VCARD\r\n" % i)
        paths.append(str(path))
    too_many = refused(
        "--user", "alice@example.com", "--team", "acme", "--from", NUMBER_SMS_MMS,
        "--to", TO, "--attach", *paths,
    )  # fmt: skip
    assert "--attach: 11 files attached; RingCentral accepts at most 10. Remove 1 file." in too_many


# --- --wait, with a worker --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_wait_returns_once_ringcentral_accepted_the_message(worker, emu, linked, tmp_path):
    photo = tmp_path / "front-desk.png"
    photo.write_bytes(samples.png(64, 48))
    out, _ = run(
        "--user", "bob@example.com", "--team", "acme", "--from", NUMBER_SMS_MMS,
        "--to", TO, "--text", "Here is the desk", "--attach", str(photo), "--wait",
    )  # fmt: skip
    message = OutboundMessage.objects.get()
    assert message.status == MessageStatus.SENT
    assert f"Message {message.pk} accepted by RingCentral (id {message.rc_message_id})." in out
    (post,) = posts(emu)
    attachment = message.attachments.get()
    assert (post.parts[1].header("Content-Type"), post.parts[1].size) == (
        "image/png",
        attachment.size,
    )
    assert post.parts[1].sha256 == attachment.sha256


@pytest.mark.django_db(transaction=True)
def test_wait_exits_non_zero_with_the_reason_and_the_fix(worker, emu, linked):
    emu.inject(Fault("status", path_contains="/sms", status=400, error_code="MSG-245"))
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(
            "send_message", "--user", "bob@example.com", "--team", "acme",
            "--from", NUMBER_SMS_MMS, "--to", TO, "--text", "Hello", "--wait",
            stdout=out, stderr=err,
        )  # fmt: skip
    assert caught.value.returncode == 1
    assert "1 of 1 message(s) not sent." in str(caught.value)
    assert "not one of yours at RingCentral" in err.getvalue()
    assert "What to do: Pick one of your numbers" in err.getvalue()
    assert OutboundMessage.objects.get().status == MessageStatus.FAILED


@pytest.mark.django_db(transaction=True)
def test_the_real_command_line_exit_status_and_message(emu, linked):
    env = subprocess_env(DEMO_EMULATOR_URL=emu.base_url, RINGCENTRAL_SERVER_URL=emu.base_url)
    base = [sys.executable, "manage.py", "send_message", "--user", "alice@example.com"]
    cwd = django_settings.BASE_DIR

    bad = subprocess.run(
        [*base, "--team", "acme", "--from", NUMBER_SMS_MMS, "--to", "12", "--text", "x"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "--to: “12”" in bad.stderr and "Traceback" not in bad.stderr

    usage = subprocess.run(
        [*base, "--text", "x"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2 and "--from" in usage.stderr

    timeout = subprocess.run(
        [*base, "--team", "acme", "--from", NUMBER_SMS_MMS, "--to", TO, "--text", "x",
         "--wait", "--timeout", "0.5"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # No worker serves this test: the message stays queued, and the command says so.
    assert timeout.returncode == 3, timeout.stderr
    assert "Queued message" in timeout.stdout
    assert "Gave up waiting after 0.5 s" in timeout.stderr and "Traceback" not in timeout.stderr
    assert OutboundMessage.objects.get().status == MessageStatus.QUEUED
    # Its task went to Celery's default queue, which no test worker reads: leave nothing behind.
    with celery_app.connection_for_write() as connection, contextlib.suppress(Exception):
        connection.default_channel.queue_purge("celery")
