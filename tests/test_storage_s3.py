"""Attachments on S3 through django-storages, against a real S3 API: a moto server on a free
loopback port. The storage is configured the way ``STORAGE_BACKEND=s3`` configures it
(private objects, signed URLs), with the endpoint pointed at that server."""

import hashlib
import urllib.request
import uuid
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from moto.server import ThreadedMotoServer

from messaging.core.files import PRESIGNED_SECONDS
from messaging.core.streaming import ObjectStream, open_stream
from messaging.links import connections
from messaging.models import Attachment, DraftAttachment, MessageStatus
from messaging.ringcentral.multipart import CHUNK_SIZE
from messaging.sending import tasks
from messaging.sending.attempt import wire_message
from tests import media_samples as samples
from tests.factories import make_connection, make_message, make_number
from tests.rc_fixtures import NUMBER_SMS_MMS, link_directly
from tests.test_compose import sent  # noqa: F401 - fixture
from tests.test_send_task import clear_shared_limiter, pattern, posts

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings, monkeypatch):
    # A proxy configured in the environment must not swallow loopback requests.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    name = f"mmsportal-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **CREDENTIALS)
    client.create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
                "addressing_style": "path",
                "signature_version": "s3v4",
            },
        },
    }
    return client, name


@pytest.fixture
def number(team, bob):
    return make_number(make_connection(team, bob))


def compose(client, number, files):
    return client.post(
        "/messages/compose/",
        {
            "sender": str(number.pk),
            "to": "+16505550111",
            "text": "Plans attached",
            "mode": "separate",
            "fit_images": "on",
            "attachments": [SimpleUploadedFile(n, d) for n, d in files],
        },
    )


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback moto
        return response.read(), response.headers


def test_uploads_are_private_objects_with_their_type(bob_client, bucket, number):
    client, name = bucket
    response = bob_client.post(
        "/messages/compose/upload/?form=3c9e7b1a-2d4f-4a6e-8b0c-1e5d7f9a2c4b",
        {"file": SimpleUploadedFile("a.jpg", samples.jpeg())},
    )
    assert response.status_code == 201
    draft = DraftAttachment.objects.get()
    head = client.head_object(Bucket=name, Key=draft.file.name)
    assert head["ContentType"] == "image/jpeg"
    assert head["ContentLength"] == draft.size
    grants = client.get_object_acl(Bucket=name, Key=draft.file.name)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]  # the owner only
    assert draft.thumbnail.name and client.head_object(Bucket=name, Key=draft.thumbnail.name)


def test_attachment_view_redirects_to_a_short_lived_signed_url(
    bob_client,
    victor_client,
    bucket,
    number,
    sent,  # noqa: F811
):
    report = samples.pdf(5000)
    assert compose(bob_client, number, [("plan.pdf", report)]).status_code == 302
    attachment = Attachment.objects.get()
    response = victor_client.get(f"/messages/attachments/{attachment.pk}/")
    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    location = response["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == [str(PRESIGNED_SECONDS)]
    assert "X-Amz-Signature" in query
    body, headers = fetch(location)
    assert hashlib.sha256(body).hexdigest() == attachment.sha256
    assert headers["Content-Type"] == "application/pdf"
    assert headers["Content-Disposition"] == 'attachment; filename="plan.pdf"'


def test_thumbnails_come_from_s3_too(bob_client, bucket, number, sent):  # noqa: F811
    assert compose(bob_client, number, [("p.jpg", samples.jpeg(400, 300))]).status_code == 302
    attachment = Attachment.objects.get()
    response = bob_client.get(f"/messages/attachments/{attachment.pk}/thumbnail/")
    assert response.status_code == 302
    body, headers = fetch(response["Location"])
    assert headers["Content-Type"] == "image/jpeg" and body[:2] == b"\xff\xd8"


def test_outsiders_get_404_and_no_url(charlie_client, bob_client, bucket, number, sent):  # noqa: F811
    compose(bob_client, number, [("plan.pdf", samples.pdf(800))])
    attachment = Attachment.objects.get()
    response = charlie_client.get(f"/messages/attachments/{attachment.pk}/")
    assert response.status_code == 404
    assert "Location" not in response


def test_removing_a_draft_deletes_the_objects(
    bob_client, bucket, number, django_capture_on_commit_callbacks
):
    client, name = bucket
    info = bob_client.post(
        "/messages/compose/upload/?form=3c9e7b1a-2d4f-4a6e-8b0c-1e5d7f9a2c4b",
        {"file": SimpleUploadedFile("a.jpg", samples.jpeg())},
    ).json()["upload"]
    draft = DraftAttachment.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert bob_client.post(info["deleteUrl"]).status_code == 200
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", [])]
    assert draft.file.name not in keys and draft.thumbnail.name not in keys


def test_fitted_photos_are_stored_and_served_from_s3(
    bob_client,
    bucket,
    number,
    sent,  # noqa: F811
):
    photos = [(f"IMG_{i}.jpg", samples.photo(2400, 1800, seed=70 + i)) for i in range(3)]
    assert compose(bob_client, number, photos).status_code == 302
    client, name = bucket
    for attachment in Attachment.objects.all():
        head = client.head_object(Bucket=name, Key=attachment.file.name)
        assert head["ContentLength"] == attachment.size and attachment.was_resized


# --- sending files kept on S3 -------------------------------------------------------------------


@pytest.fixture
def s3_linked(bucket, emulator, rc_user, team, alice):
    clear_shared_limiter()
    connection = link_directly(emulator, team, alice, rc_user)
    connections.sync_numbers(connection)
    emulator.reset()
    return connection


def s3_mms(connection, user, files):
    message = make_message(
        connection.numbers.get(phone_number=NUMBER_SMS_MMS), user, to=("+16505550181",), text="S3"
    )
    for position, (name, data) in enumerate(files):
        stored = default_storage.save(f"attachments/{message.team_id}/{name}", ContentFile(data))
        Attachment.objects.create(
            message=message,
            file=stored,
            original_name=name,
            content_type="image/jpeg",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            position=position,
        )
    return message


def test_files_on_s3_are_streamed_into_the_send_and_arrive_whole(emulator, s3_linked, alice):
    files = [(f"photo{i}.jpg", pattern(300_000 + i, seed=i)) for i in range(3)]
    message = s3_mms(s3_linked, alice, files)
    # Each file is read from the object's GET response as the body goes out, not downloaded
    # whole first (django-storages' S3File does that).
    handles = [source.open() for source in wire_message(message)[3]]
    assert all(isinstance(h, ObjectStream) for h in handles)
    assert [h.size for h in handles] == [len(data) for _, data in files]
    for handle in handles:
        handle.close()

    assert tasks.send_message(message.pk) == "sent"
    (post,) = posts(emulator)
    assert [p.sha256 for p in post.parts[1:]] == [
        hashlib.sha256(data).hexdigest() for _, data in files
    ]
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT


def test_an_object_stream_rewinds_by_asking_s3_again(s3_linked, alice):
    data = pattern(3 * CHUNK_SIZE + 5)
    message = s3_mms(s3_linked, alice, [("a.jpg", data)])
    storage = Attachment._meta.get_field("file").storage
    stream = open_stream(storage, message.attachments.get().file.name)
    first = stream.read(CHUNK_SIZE)
    assert first == data[:CHUNK_SIZE] and stream.tell() == CHUNK_SIZE
    assert stream.seek(0) == 0
    assert stream.read() == data
    stream.close()


def test_a_file_gone_from_s3_fails_the_message_with_a_fix(bucket, s3_linked, alice):
    message = s3_mms(s3_linked, alice, [("a.jpg", pattern(1000))])
    client, name = bucket
    client.delete_object(Bucket=name, Key=message.attachments.get().file.name)
    assert tasks.send_message(message.pk) == "failed"
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert "no longer in storage" in message.error_reason


def test_a_file_replaced_on_s3_by_one_of_another_size_is_not_sent(
    emulator, bucket, s3_linked, alice
):
    message = s3_mms(s3_linked, alice, [("a.jpg", pattern(1000))])
    client, name = bucket
    client.put_object(Bucket=name, Key=message.attachments.get().file.name, Body=pattern(999))
    assert tasks.send_message(message.pk) == "failed"
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert "Attach" in message.error_fix
    assert posts(emulator) == []
