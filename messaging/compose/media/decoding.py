"""Opening and decoding images under guard, for checking and for fitting alike.

Every image is measured against the budget from its header (cost.py) before Pillow decodes
anything, and whatever a decoder raises on hostile bytes becomes a ``MediaError``. Pillow's
process-wide settings are made here, in the module that decodes.
"""

from __future__ import annotations

import io
import warnings

import pillow_heif
from PIL import Image, ImageFile

from messaging.compose.media import cost
from messaging.compose.media.files import MAX_IMAGE_PIXELS, MediaError, _damaged

pillow_heif.register_heif_opener()

# Pillow's own decompression-bomb guard, process-wide: it warns above MAX_IMAGE_PIXELS and
# refuses above twice that; the header check (cost.py) refuses above MAX_IMAGE_PIXELS first,
# with a message naming the size. The warning is an error wherever this module decodes.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# A damaged image is an error for the user, never half an image sent on.
ImageFile.LOAD_TRUNCATED_IMAGES = False


_FORMATS = {
    "HEIF": ("image/heic", "HEIC photo"),
    "AVIF": ("image/avif", "AVIF image"),
    "BMP": ("image/bmp", "BMP image"),
}


def open_image(data: bytes, budget: cost.Budget = cost.DEFAULT_BUDGET) -> Image.Image:
    """Open image bytes lazily (header only), refusing what costs more than ``budget``."""
    measured = cost.from_bytes(data, budget)
    try:
        with warnings.catch_warnings():
            # Only the header is read here; the size check below gives the clearer message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except MemoryError:
        raise
    except Image.DecompressionBombError:
        raise MediaError(
            "{name} declares an enormous picture size, which is refused to protect the server. "
            "Save a smaller copy of the picture and attach that."
        ) from None
    except Exception:  # noqa: BLE001 - any failure to parse hostile bytes means "damaged"
        raise _damaged("image") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise _damaged("image")
    if measured is None:
        try:
            known = (f"image/{(image.format or '').lower()}", f"{image.format} image")
            mime, label = _FORMATS.get(image.format or "", known)
            cost.from_image(image, mime, label, budget)
        except BaseException:
            image.close()
            raise
    return image


def _load(image: Image.Image, kind: str) -> None:
    """Decode every pixel (every frame of an animation), turning all failures into MediaError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Bounded by the header check: open_image refused what costs too much.
            frames = getattr(image, "n_frames", 1)
            for index in range(frames):
                if frames > 1:
                    image.seek(index)
                image.load()
            if frames > 1:
                image.seek(0)
    except (MediaError, MemoryError):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise cost.too_large(*image.size) from None
    except Exception:  # noqa: BLE001 - any failure to decode hostile bytes means "damaged"
        raise _damaged(kind) from None


def _is_animated(image: Image.Image) -> bool:
    return bool(getattr(image, "is_animated", False)) and getattr(image, "n_frames", 1) > 1


def _orientation(image: Image.Image) -> int:
    if image.format == "PNG" and "exif" not in image.info:
        # Pillow would decode the whole PNG to look for EXIF after the pixels; an orientation
        # there is one no viewer applies either.
        return 1
    try:
        with warnings.catch_warnings():
            # Pillow warns about damaged EXIF blocks; they are metadata we drop anyway.
            warnings.simplefilter("ignore")
            value = image.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is metadata we drop anyway
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _has_alpha(image: Image.Image) -> bool:
    """Whether any pixel is less than opaque (a PNG with an unused alpha channel is opaque).

    Read from the bands' extremes, without a copy of the picture."""
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        return image.getextrema()[-1][0] < 255
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA").getextrema()[-1][0] < 255
    return False


def _reduced(image: Image.Image, factor: int) -> Image.Image:
    """``image.reduce(factor)`` a strip at a time where Pillow would first make a full-size
    premultiplied copy (pictures with transparency): the extra memory is one strip's."""
    if factor < 2:
        return image
    if image.mode not in ("RGBA", "LA"):
        return image.reduce(factor)
    width, height = image.size
    out = Image.new(image.mode, (-(-width // factor), -(-height // factor)))
    rows = max(1, 4_000_000 // max(1, width) // factor) * factor
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(height, top + rows)))
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


def _flatten(image: Image.Image) -> Image.Image:
    """An RGB (or L) copy; transparent areas become white, as most phones would show them."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("CMYK", "YCbCr"):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] == 255:
        return rgba.convert("RGB")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _for_png(image: Image.Image) -> Image.Image:
    if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        return image
    if image.mode in ("I;16B", "I;16L", "I", "F"):
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("CMYK", "YCbCr"):
        return image.convert("RGB")
    return image.convert("RGBA")
