"""`Idempotency-Key` on the POSTs that create (messages, replies).

The key's row is inserted first, on its own and committed, in the "in progress" state: the
unique constraint (team, key) lets exactly one of several concurrent requests with the same key
through, and the others are told to retry (409). When the work answers with success, the
answer is stored on the row and every later request with the same key and the same request
gets it again, creating and sending nothing; the same key with another request is refused
(422). An answer that is an error frees the key, so the fixed request may use it again. Keys
are kept API_IDEMPOTENCY_HOURS (`purge_expired`, hourly).

The work and the stored answer commit in one transaction, so a request whose process died
half-way left nothing behind but its "in progress" row; a row still in progress after
ABANDONED_AFTER (far longer than any request may take) is taken over by the next retry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from messaging.api.problems import Problem
from messaging.models import IdempotencyRecord, IdempotencyState

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
ABANDONED_AFTER = timedelta(minutes=10)


def fingerprint(request) -> str:
    """SHA-256 of what the request asks for: method, path, fields, and each file's name and
    bytes (not the multipart framing, whose boundary a client may change between retries)."""
    data = request.data
    if hasattr(data, "getlist"):  # a form: every value of each field, files apart
        fields = {name: data.getlist(name) for name in data if name not in request.FILES}
    else:  # JSON: whatever it holds (not always an object; the serializer says so later)
        fields = data
    files = []
    for name in sorted(request.FILES.keys()):
        for upload in request.FILES.getlist(name):
            sha = hashlib.sha256()
            for chunk in upload.chunks():
                sha.update(chunk)
            upload.seek(0)
            files.append([name, upload.name, sha.hexdigest()])
    document = {"method": request.method, "path": request.path, "fields": fields, "files": files}
    encoded = json.dumps(document, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(encoded.encode()).hexdigest()


def key_of(request) -> str | None:
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not value or len(value) > MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise Problem(
            400,
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, such as a UUID.",
            code="idempotency-key-invalid",
            errors={HEADER: ["Use 1 to 255 printable ASCII characters."]},
        )
    return value


def _claim(team, key: str, api_key, digest: str) -> IdempotencyRecord | None:
    """Insert the key's row (None: this request does the work) or return the one that exists."""
    now = timezone.now()
    cutoff = now - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    for _ in range(2):
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.create(
                    team=team, key=key, api_key=api_key, fingerprint=digest
                )
            return None
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(team=team, key=key).first()
            if existing is None:  # freed or purged meanwhile: try again
                continue
            abandoned = (
                existing.state == IdempotencyState.IN_PROGRESS
                and existing.created_at < now - ABANDONED_AFTER
            )
            if existing.created_at < cutoff or abandoned:
                IdempotencyRecord.objects.filter(pk=existing.pk, state=existing.state).delete()
                continue
            return existing
    raise Problem(
        409, "A request with this key is still being processed; retry.", code="idempotency-busy"
    )


def run_once(request, membership, work: Callable[[], Response]) -> Response:
    """Answer `work()` once per Idempotency-Key (or always, without one)."""
    key = key_of(request)
    if key is None:
        return work()
    team = membership.team
    digest = fingerprint(request)
    existing = _claim(team, key, getattr(request._request, "api_key", None), digest)
    if existing is not None:
        if existing.fingerprint != digest:
            raise Problem(
                422,
                f"This {HEADER} was used for a different request; use a new key for a new request.",
                code="idempotency-key-reused",
            )
        if existing.state == IdempotencyState.IN_PROGRESS:
            raise Problem(
                409,
                "A request with this key is still being processed; retry.",
                code="idempotency-busy",
            )
        response = Response(existing.response, status=existing.status_code)
        response["Idempotent-Replayed"] = "true"
        return response
    try:
        with transaction.atomic():
            response = work()
            if 200 <= response.status_code < 300:
                IdempotencyRecord.objects.filter(team=team, key=key).update(
                    state=IdempotencyState.DONE,
                    status_code=response.status_code,
                    # Stored as the client read it (times as text), replayed as it was.
                    response=json.loads(JSONRenderer().render(response.data)),
                )
    except BaseException:
        IdempotencyRecord.objects.filter(team=team, key=key).delete()
        raise
    if not 200 <= response.status_code < 300:
        IdempotencyRecord.objects.filter(team=team, key=key).delete()
    return response


def purge_expired(now=None) -> int:
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
