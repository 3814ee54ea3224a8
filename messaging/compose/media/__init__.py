"""Attachment files: what they really are, names that are safe, and images that fit.

Three jobs, all pure (bytes in, bytes out; no database, no storage):

``ingest(name, data)`` (cleaning.py)
    Checks one file and returns a ``MediaFile`` ready to store, or raises ``MediaError`` with a
    message for the user. Steps:

    1. The name is cleaned (``clean_filename``, names.py): path parts, control and
       bidirectional-override characters removed, length capped.
    2. The type is decided from the bytes only (``sniff``, sniffing.py). The browser's claim is
       ignored, and the name's extension never makes a file acceptable: it only picks between
       two labels the content supports equally (CSV or plain text), and a name that claims
       another kind of file than the content (``invoice.jpg`` holding a program or a text) is
       refused. Programs and scripts are refused outright.
    3. Raster images are normalised: HEIC/HEIF/AVIF become JPEG, BMP/TIFF become PNG (phones
       show neither reliably), the EXIF orientation is applied to the pixels, and metadata —
       location, camera, thumbnails, comments, anything after the end of the image — is removed.
       JPEG, PNG, WebP and GIF are rebuilt segment by segment without re-encoding when their
       pixels need no turning, so quality is untouched (rebuilding.py). Before any of that,
       what decoding the image will cost is read from its header and refused over the budget
       (cost.py: pixels of all frames, pixels of one, memory). Every image is then decoded in
       full, once (a JPEG at the scale of its preview), which catches truncated and damaged
       files, and the preview is made from the same decode (decoding.py).
    4. Other files are never altered; PDFs must end properly (truncated or with data appended).

``fit_to_budget(files, budget)`` (fitting.py)
    Makes the files add up to at most ``budget`` bytes by scaling down and re-encoding the still
    raster images only, spending the budget across all of them: each image gets a share in
    proportion to its pixel count (images already below their share keep their size and their
    unused share goes to the others), then bytes left unused by the first round go back to the
    images that were reduced. Raises ``FitError`` when that cannot work.

``thumbnail(data)`` (cleaning.py)
    A small JPEG preview of a raster image.

files.py holds what the steps share: ``MediaFile``, the errors and the accepted types.

isolation.py runs a step in a child process under a memory and a CPU limit (the compose room's
uploads.py calls it with the settings); the steps themselves know nothing of processes.
"""

from messaging.compose.media.cleaning import ingest, thumbnail
from messaging.compose.media.cost import DEFAULT_BUDGET, Budget
from messaging.compose.media.files import (
    ACCEPT,
    MAX_IMAGE_PIXELS,
    MAX_NAME_CHARS,
    THUMBNAIL_EDGE,
    FitError,
    MediaError,
    MediaFile,
)
from messaging.compose.media.fitting import (
    MIN_IMAGE_BYTES,
    _water_fill,
    fit_refusal,
    fit_to_budget,
    shrink,
)
from messaging.compose.media.names import clean_filename, extension, with_extension
from messaging.compose.media.sniffing import Sniffed, sniff

__all__ = [
    "ACCEPT",
    "DEFAULT_BUDGET",
    "MAX_IMAGE_PIXELS",
    "MAX_NAME_CHARS",
    "MIN_IMAGE_BYTES",
    "THUMBNAIL_EDGE",
    "Budget",
    "FitError",
    "MediaError",
    "MediaFile",
    "Sniffed",
    "_water_fill",
    "clean_filename",
    "extension",
    "fit_refusal",
    "fit_to_budget",
    "ingest",
    "shrink",
    "sniff",
    "thumbnail",
    "with_extension",
]
