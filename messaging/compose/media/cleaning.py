"""``ingest``: one attached file checked and normalised, ready to store; and its preview.

The steps are in the package docstring; this module runs them in order and does the
conversions and re-encodes the rebuilders (rebuilding.py) cannot avoid.
"""

from __future__ import annotations

import io
import logging
import warnings

from PIL import Image, ImageOps, JpegImagePlugin

from messaging.compose.media import cost
from messaging.compose.media.decoding import (
    _flatten,
    _for_png,
    _is_animated,
    _load,
    _orientation,
    _reduced,
    open_image,
)
from messaging.compose.media.files import (
    CONVERTIBLE_TYPES,
    RASTER_TYPES,
    THUMBNAIL_EDGE,
    MediaError,
    MediaFile,
    _damaged,
    _label,
    _violation,
)
from messaging.compose.media.names import (
    _CONVERTIBLE_EXTENSIONS,
    clean_filename,
    extension,
    with_extension,
)
from messaging.compose.media.rebuilding import _REBUILDERS
from messaging.compose.media.sniffing import Sniffed, sniff
from messaging.ringcentral import limits

log = logging.getLogger(__name__)


def _named(error: MediaError, name: str) -> MediaError:
    """Fill the file's name into a message written with a ``{name}`` placeholder."""
    message = error.message.replace("{name}", f"“{name}”")
    return type(error)(message[0].upper() + message[1:] if message else message)


def ingest(
    name: str | None,
    data: bytes,
    *,
    strip_metadata: bool = True,
    budget: cost.Budget = cost.DEFAULT_BUDGET,
) -> MediaFile:
    """Check and normalise one attached file (see the package docstring). Raises MediaError.

    Images that would cost more than ``budget`` to decode are refused from their header."""
    shown = clean_filename(name)
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged metadata blocks (metadata we drop anyway); the pixel
            # guard does not rely on warnings (open_image checks the size itself).
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            return _ingest(shown, data, strip_metadata, budget)
    except MediaError as error:
        raise _named(error, shown) from None
    except MemoryError:
        raise  # the process' memory limit: its caller says so
    except Exception:
        # Decoders meet hostile bytes here; whatever they raise, the user gets a refusal, not
        # a server error. Logged, because it also means a case the checks above did not name.
        log.warning("Unexpected failure while checking an attachment", exc_info=True)
        raise _named(_damaged("file"), shown) from None


def _unsupported(name: str, sniffed: Sniffed) -> MediaError:
    message = _violation(
        [{"name": name, "size": 1, "content_type": sniffed.mime}], "unsupported_type"
    )
    return MediaError(message.replace(f"({sniffed.mime})", f"({sniffed.label})", 1))


# Kinds of file a name may mix up without suspicion: the content then decides, and the name is
# corrected. Anything else (a text or a program called .jpg) means the wrong file was attached.
_KINDS = {"audio": "media", "video": "media", "vcard": "document"}
# A drawing (SVG) is a program-like text for the viewer, not a photo: a photo's name on one is
# refused like any other mismatch, and so is a drawing's name on a photo.
_DRAWINGS = frozenset({"image/svg+xml"})


def _kind(mime: str, category: str) -> str:
    if mime in _DRAWINGS:
        return "drawing"
    return _KINDS.get(category, category)


def _check_name_matches(name: str, sniffed: Sniffed) -> None:
    """Refuse a name that claims a different kind of file than the content."""
    ext = extension(name)
    claimed = [(m.mime, m.label, m.category) for m in limits.SUPPORTED_TYPES if ext in m.extensions]
    if ext in _CONVERTIBLE_EXTENSIONS:
        claimed = [("image/heic", "HEIC or AVIF photo", "image")]
    if not claimed or any(mime == sniffed.mime for mime, _, _ in claimed):
        return
    actual = limits.describe_type(CONVERTIBLE_TYPES.get(sniffed.mime, ("", sniffed.mime))[1])
    claimed_kinds = {_kind(mime, category) for mime, _, category in claimed}
    if actual is not None and _kind(actual.mime, actual.category) in claimed_kinds:
        return  # e.g. a PNG saved as .jpg: fine, the name is corrected to match
    raise MediaError(
        f"{{name}} is named like a {claimed[0][1]} but contains a {sniffed.label}. "
        "Rename it to match its content, or attach the file you meant."
    )


def _ingest(name: str, data: bytes, strip_metadata: bool, budget: cost.Budget) -> MediaFile:
    if not data:
        raise MediaError(
            _violation([{"name": name, "size": 0, "content_type": ""}], "empty_attachment")
        )
    sniffed = sniff(data, name)
    if sniffed.refusal:
        raise MediaError(f"{{name}} {sniffed.refusal}.")
    if sniffed.mime not in CONVERTIBLE_TYPES and not limits.is_supported(sniffed.mime):
        raise _unsupported(name, sniffed)
    _check_name_matches(name, sniffed)
    if sniffed.mime in RASTER_TYPES or sniffed.mime in CONVERTIBLE_TYPES:
        return _ingest_image(name, data, sniffed, strip_metadata, budget)
    if sniffed.mime == "application/pdf":
        _check_pdf(data)
    return MediaFile.from_bytes(
        with_extension(name, sniffed.mime), sniffed.mime, data, original_content_type=sniffed.mime
    )


def _check_pdf(data: bytes) -> None:
    end = data.rfind(b"%%EOF")
    if end < 0:
        raise _damaged("PDF document")
    if data[end + 5 :].strip(b" \t\r\n\0"):
        raise MediaError(
            "{name} has data hidden after the end of the PDF document, so it is refused. "
            "Open it in a PDF viewer and save or print it to a new PDF."
        )


def _ingest_image(
    name: str, data: bytes, sniffed: Sniffed, strip_metadata: bool, budget: cost.Budget
) -> MediaFile:
    notes: list[str] = []
    image = open_image(data, budget)
    with image:
        width, height = image.size
        animated = _is_animated(image)
        orientation = 1 if animated else _orientation(image)
        target = CONVERTIBLE_TYPES.get(sniffed.mime, ("", sniffed.mime))[1]
        if target != sniffed.mime:
            # Converted: decode, turn upright, encode anew. Nothing of the old metadata survives.
            if animated:
                raise MediaError(
                    f"{{name}} is an animated {sniffed.label}, which cannot be converted here. "
                    "Send it as a GIF or a video instead."
                )
            _load(image, sniffed.label)
            upright = _upright(image, orientation)
            out, metadata_removed = _encode_converted(image, upright, target, strip_metadata)
            width, height = upright.size
            notes.append(f"converted from {sniffed.label} to {_label(target)}")
            if orientation != 1:
                notes.append("turned upright")
            if metadata_removed:
                notes.append("location and camera details removed")
            preview = _preview(upright)
            del upright
            return _image_file(
                name,
                target,
                out,
                data,
                sniffed,
                (width, height),
                notes,
                preview,
                fittable=True,
                was_converted=True,
                metadata_removed=metadata_removed,
            )
        rebuilt, removed, trailing = _REBUILDERS[sniffed.mime](data)
        if orientation != 1 and not animated:
            _load(image, sniffed.label)
            upright = _upright(image, orientation)
            out = _encode_upright(image, upright, sniffed.mime, strip_metadata, data)
            width, height = upright.size
            del upright
            notes.append("turned upright")
            removed = True
        elif strip_metadata:
            out = rebuilt
        else:
            out = data[: len(data) - trailing] if trailing else data
            removed = False
        del rebuilt
    if trailing:
        notes.append(f"{limits.format_size(trailing)} of extra data after the image removed")
    if removed and strip_metadata:
        notes.append("location and camera details removed")
    fittable, preview = _verify(out, sniffed.label, budget)
    return _image_file(
        name,
        sniffed.mime,
        out,
        data,
        sniffed,
        (width, height),
        notes,
        preview,
        fittable=fittable,
        metadata_removed=bool(removed and strip_metadata) or bool(trailing),
    )


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    """The picture turned as its EXIF orientation says (Pillow copies it even when upright)."""
    if orientation == 1:
        return image
    return ImageOps.exif_transpose(image) or image


def _verify(out: bytes, kind: str, budget: cost.Budget) -> tuple[bool, bytes | None]:
    """Decode the bytes that will be sent, every frame of them (which catches damaged and
    truncated files), and make the preview from the same decode: (fittable?, preview)."""
    checked = open_image(out, budget)
    with checked:
        if checked.format == "JPEG":
            # The smallest scale that still makes a full preview: decoding at reduced scale
            # reads (and so checks) every byte of the entropy-coded data all the same.
            checked.draft("RGB", (THUMBNAIL_EDGE, THUMBNAIL_EDGE))
        _load(checked, kind)
        return not _is_animated(checked), _preview(checked)


def _image_file(
    name: str,
    mime: str,
    out: bytes,
    data: bytes,
    sniffed: Sniffed,
    dimensions: tuple[int, int],
    notes: list[str],
    preview: bytes | None,
    **facts,
) -> MediaFile:
    """The image ``out`` that ingesting ``data`` made, as a MediaFile with its preview."""
    width, height = dimensions
    result = MediaFile.from_bytes(
        with_extension(name, mime),
        mime,
        out,
        original_size=len(data),
        original_content_type=sniffed.mime,
        width=width,
        height=height,
        notes=notes,
        **facts,
    )
    result.thumbnail = preview
    return result


def _kept_exif(image: Image.Image) -> bytes | None:
    """The image's EXIF with the orientation reset, for callers who keep metadata."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exif = image.getexif()
    if not exif:
        return None
    exif[0x0112] = 1
    return exif.tobytes()


def _encode_converted(
    original: Image.Image, upright: Image.Image, target: str, strip_metadata: bool
) -> tuple[bytes, bool]:
    buffer = io.BytesIO()
    icc = original.info.get("icc_profile")
    extra = {} if strip_metadata or not _kept_exif(original) else {"exif": _kept_exif(original)}
    had_metadata = bool(original.info.get("exif") or original.info.get("xmp"))
    if target == "image/jpeg":
        # No optimize=True at full size: it holds every coefficient of the picture at once
        # (two bytes a sample) for 5 % fewer bytes, and a photo is fitted afterwards anyway.
        _flatten(upright).save(buffer, "JPEG", quality=90, icc_profile=icc, **extra)
    else:
        _for_png(upright).save(buffer, "PNG", icc_profile=icc, **extra)
    return buffer.getvalue(), had_metadata and strip_metadata


def _encode_upright(
    original: Image.Image, upright: Image.Image, mime: str, strip: bool, data: bytes
) -> bytes:
    """Re-encode an image whose pixels were turned, as close to the original as the format
    allows: JPEG with its own quantisation tables and subsampling, PNG and lossless WebP
    losslessly."""
    buffer = io.BytesIO()
    icc = original.info.get("icc_profile")
    extra = {} if strip or not _kept_exif(original) else {"exif": _kept_exif(original)}
    if mime == "image/jpeg":
        options = {"qtables": original.quantization} if original.quantization else {"quality": 90}
        sampling = JpegImagePlugin.get_sampling(original)
        if sampling != -1:
            options["subsampling"] = sampling
        image = upright if upright.mode in ("RGB", "L", "CMYK") else _flatten(upright)
        image.save(buffer, "JPEG", icc_profile=icc, **options, **extra)
    elif mime == "image/webp":
        lossless = b"VP8L" in data[12:64]
        upright.save(buffer, "WEBP", lossless=lossless, quality=90, icc_profile=icc, **extra)
    elif mime == "image/gif":
        upright.save(buffer, "GIF")
    else:
        _for_png(upright).save(buffer, "PNG", icc_profile=icc, **extra)
    return buffer.getvalue()


def _preview(image: Image.Image) -> bytes | None:
    """A JPEG preview of a decoded image, at most ``THUMBNAIL_EDGE`` pixels on its longer side.

    Large pictures are box-reduced first (``_reduced``), never copied at full size.
    """
    try:
        image = _reduced(image, int(max(image.size) / THUMBNAIL_EDGE / 2))
        image.thumbnail((THUMBNAIL_EDGE, THUMBNAIL_EDGE), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        _flatten(image).convert("RGB").save(buffer, "JPEG", quality=80)
        return buffer.getvalue()
    except Exception:  # noqa: BLE001 - a preview is optional; the file itself was checked
        return None


def thumbnail(data: bytes, budget: cost.Budget = cost.DEFAULT_BUDGET) -> bytes | None:
    """A JPEG preview at most ``THUMBNAIL_EDGE`` pixels on its longer side, or None (also for
    an image over ``budget``: its header says so before anything is decoded)."""
    try:
        image = open_image(data, budget)
        with image:
            if image.format == "JPEG":
                image.draft("RGB", (THUMBNAIL_EDGE, THUMBNAIL_EDGE))
            return _preview(image)
    except Exception:  # noqa: BLE001 - a preview is optional; the file itself was checked
        return None
