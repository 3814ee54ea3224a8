"""What a file on the compose page and a file of a message both record."""

from django.db import models


class StoredFile(models.Model):
    """A checked file whose bytes are in the private storage: what it is and what normalising
    did to it (messaging/compose/media/).

    `original_name` is the sanitised name shown to people and used as the multipart filename;
    `size`, `sha256` and `content_type` describe the stored bytes exactly as they are sent;
    `original_content_type` is the type of the file as the user attached it.
    """

    thumbnail = models.FileField(max_length=200, blank=True)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    original_content_type = models.CharField(max_length=100, blank=True)
    # HEIC/AVIF/BMP/TIFF turned into JPEG or PNG, or a photo re-encoded as JPEG to fit.
    was_converted = models.BooleanField(default=False)
    # Location, camera and other metadata removed from an image.
    metadata_removed = models.BooleanField(default=False)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        abstract = True
