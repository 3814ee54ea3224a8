"""A message's files are private: these views are the only way to their bytes.

    GET /messages/attachments/<id>/                    the file (any member of its team)
    GET /messages/attachments/<id>/thumbnail/          its preview, for images

Whoever is not in the attachment's team gets 404, as if it did not exist. The bytes are served
by messaging/core/files.py (`serve_stored`), which decides what a browser may show inline.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.views.decorators.http import require_GET

from messaging.core.files import serve_stored
from messaging.models import Attachment
from messaging.teams.permissions import get_team_for_user


def _attachment(request, pk) -> Attachment:
    attachment = Attachment.objects.select_related("message__team").filter(pk=pk).first()
    if attachment is None:
        raise Http404
    # Raises 404 unless the user is a member of the message's team (any role may read).
    get_team_for_user(request, attachment.message.team.slug)
    return attachment


@login_required
@require_GET
def attachment(request, pk):
    item = _attachment(request, pk)
    return serve_stored(item.file.name, item.content_type, item.original_name)


@login_required
@require_GET
def attachment_thumbnail(request, pk):
    item = _attachment(request, pk)
    return serve_stored(
        item.thumbnail.name, "image/jpeg", f"preview of {item.original_name}.jpg", inline=True
    )
