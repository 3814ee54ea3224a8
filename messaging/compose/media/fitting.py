"""``fit_to_budget``: still images scaled down and re-encoded until all files fit the budget."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

from PIL import Image

from messaging.compose.media import cost
from messaging.compose.media.decoding import (
    _flatten,
    _for_png,
    _has_alpha,
    _load,
    _reduced,
    open_image,
)
from messaging.compose.media.files import FitError, MediaError, MediaFile, _label, _violation
from messaging.compose.media.names import with_extension
from messaging.ringcentral import limits

# Fitting: JPEG quality tried first, the floor it may drop to, and the smallest useful image.
FIT_QUALITY = 82
FIT_MIN_QUALITY = 45
FIT_MIN_LONG_EDGE = 200
# Fitting stops once an image uses this share of its byte target, or after this many encodes.
FIT_GOOD_ENOUGH = 0.95
FIT_TRIES = 12
# Pixels of the trial encode that estimates how large a picture comes out.
PROBE_PIXELS = 250_000
# Bytes a pixel of a photo takes at FIT_QUALITY, on the heavy side: a JPEG is first decoded
# at the scale this suggests, and again larger only when the picture turns out to need fewer.
PHOTO_BYTES_PER_PIXEL = 0.2
# How a photo's bytes a pixel fall as it keeps more pixels (see _pixels_for).
SCALING = 0.1
# A share smaller than this cannot hold a useful photo; fitting refuses instead of sending stamps.
MIN_IMAGE_BYTES = 12_000


def _water_fill(total: int, caps: Sequence[int], weights: Sequence[float]) -> list[int]:
    """Share ``total`` in proportion to ``weights``; nobody gets more than their cap, and what
    a capped share leaves goes to the others."""
    allocation = [0] * len(caps)
    active = set(range(len(caps)))
    remaining = total
    while active:
        weight_sum = sum(weights[i] for i in active)
        capped = [i for i in active if caps[i] <= remaining * weights[i] / weight_sum]
        if not capped:
            for i in active:
                allocation[i] = int(remaining * weights[i] / weight_sum)
            break
        for i in capped:
            allocation[i] = caps[i]
            remaining -= caps[i]
            active.discard(i)
    return allocation


def _dimensions(size: tuple[int, int], pixels: float) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, math.sqrt(max(pixels, 1) / (width * height)))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode_fitted(image: Image.Image, dims: tuple[int, int], fmt: str, quality: int) -> bytes:
    resized = (
        image
        if dims == image.size
        else image.resize(dims, Image.Resampling.LANCZOS, reducing_gap=2.0)
    )
    buffer = io.BytesIO()
    if fmt == "JPEG":
        resized.save(buffer, "JPEG", quality=quality, optimize=True, progressive=True)
    else:
        resized.save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def _decode(data: bytes, label: str, pixels: float, most_pixels: float, budget: cost.Budget):
    """The picture decoded, a JPEG at no fewer than ``pixels`` (it decodes at 1/2, 1/4 or 1/8
    of its size), brought down to about ``most_pixels``, without transparency unless it has
    some: (working copy, original size, has transparency?, decoded at reduced scale?)."""
    opened = image = open_image(data, budget)
    try:
        original_size = image.size
        if image.format == "JPEG":
            image.draft("RGB", _dimensions(original_size, pixels))
        _load(image, label)
        reduced_decode = image.size != original_size
        alpha = _has_alpha(image)
        if image.mode not in ("RGB", "RGBA", "L"):
            image = _for_png(image).convert("RGBA") if alpha else _flatten(image)
        # Box-reduce whole factors first: fast, and the full-size pixels are let go at once.
        factor = int(math.sqrt(image.size[0] * image.size[1] / max(most_pixels, 1)))
        image = _reduced(image, factor)
        # No copy of a picture that is already in the mode it is encoded from.
        if alpha:
            base = image if image.mode == "RGBA" else image.convert("RGBA")
        else:
            image = _flatten(image)
            base = image if image.mode == "RGB" else image.convert("RGB")
    except BaseException:
        opened.close()
        raise
    if base is not opened:
        opened.close()
    return base, original_size, alpha, reduced_decode


def _pixels_for(target: int, probe_bytes: int, probe_dims: tuple[int, int]) -> float:
    """Pixels that should make about 95 % of ``target`` bytes, from a probe encode.

    A photo takes fewer bytes a pixel the more pixels it keeps (finer detail is lost to
    downscaling first): about as the pixel count to the power of -SCALING, which puts the first
    try near the answer instead of a third below it."""
    probe_pixels = probe_dims[0] * probe_dims[1]
    per_pixel = probe_bytes / probe_pixels
    wanted = (0.95 * target / (per_pixel * probe_pixels**SCALING)) ** (1 / (1 - SCALING))
    return max(wanted, 1.0)


def shrink(file: MediaFile, target: int, budget: cost.Budget = cost.DEFAULT_BUDGET) -> MediaFile:
    """``file`` scaled down and re-encoded to at most ``target`` bytes, as large as fits.

    Opaque images become JPEG; images with transparency stay PNG. Raises FitError when even
    the smallest useful version is too big.
    """
    data = file.data
    width, height = file.width or 0, file.height or 0
    if not width or not height:
        with open_image(data, budget) as header:
            width, height = header.size
    # Never decode more pixels than could fit: at our quality a photo needs at least about
    # one byte per eight pixels, so larger decodes would be scaled away again.
    most_pixels = min(width * height, target * 8)
    photo_pixels = min(most_pixels, target / PHOTO_BYTES_PER_PIXEL)
    base, original_size, alpha, reduced = _decode(
        data, file.label, photo_pixels, most_pixels, budget
    )
    fmt = "PNG" if alpha else "JPEG"
    pixels = float(min(base.size[0] * base.size[1], most_pixels))
    probe_dims = _dimensions(base.size, min(pixels, PROBE_PIXELS))
    probe = _encode_fitted(base, probe_dims, fmt, FIT_QUALITY)
    wanted = min(most_pixels, _pixels_for(target, len(probe), probe_dims))
    if reduced and wanted > 1.1 * base.size[0] * base.size[1]:
        # A picture that compresses well: decode it again, larger.
        base, original_size, alpha, reduced = _decode(data, file.label, wanted, most_pixels, budget)
    del data
    # The first encode, at a modest size, told how many bytes a pixel of this picture costs,
    # so that the search starts near the answer instead of encoding the whole picture.
    full = float(base.size[0] * base.size[1])
    # Close to the decoded size, try that size itself: no resampling at all.
    pixels = full if wanted >= 0.85 * full else wanted
    quality, best, tried = FIT_QUALITY, None, set()
    # Pixel counts known to fit and known to be too big at this quality. Resampling changes how
    # well a picture compresses, so the size is not smooth in the pixel count: estimates that
    # leave this bracket are replaced by its middle, which keeps the search from oscillating.
    fits_at, too_big_at = 0.0, full + 1
    for _ in range(FIT_TRIES):
        dims = _dimensions(base.size, pixels)
        if (dims, quality) in tried:
            break
        tried.add((dims, quality))
        out = _encode_fitted(base, dims, fmt, quality)
        area = float(dims[0] * dims[1])
        if len(out) <= target:
            if best is None or len(out) > len(best[0]):
                best = (out, dims)
            fits_at = max(fits_at, area)
            if len(out) >= FIT_GOOD_ENOUGH * target or area >= full:
                break
            guess = pixels * target / len(out) * 0.99
        else:
            too_big_at = min(too_big_at, area)
            guess = pixels * target / len(out) * 0.95
            if best is None and max(_dimensions(base.size, guess)) < FIT_MIN_LONG_EDGE:
                if fmt == "JPEG" and quality > FIT_MIN_QUALITY:
                    # As small as is useful already: trade quality instead of size.
                    quality = max(FIT_MIN_QUALITY, quality - 15)
                    fits_at, too_big_at = 0.0, full + 1
                    continue
                smallest = FIT_MIN_LONG_EDGE**2 * full / max(base.size) ** 2
                if area <= smallest * 1.01:
                    break
                guess = smallest
        guess = min(guess, full)
        if fits_at and not fits_at < guess < too_big_at:
            guess = (fits_at + min(too_big_at, full)) / 2
        if too_big_at - fits_at < 0.01 * too_big_at:
            break
        pixels = min(guess, full)
    if best is None:
        raise FitError(
            f"“{file.name}” cannot be made small enough: the other files leave it only "
            f"{limits.format_size(target)}. Remove some files and try again."
        )
    out, dims = best
    mime = "image/png" if fmt == "PNG" else "image/jpeg"
    notes = [n for n in file.notes if not n.startswith(("reduced from", "converted to"))] + [
        f"reduced from {original_size[0]:,} × {original_size[1]:,} "
        f"({limits.format_size(file.size)}) to {dims[0]:,} × {dims[1]:,} "
        f"({limits.format_size(len(out))}) to fit"
    ]
    converted = mime != file.content_type
    if converted:
        notes.append(f"converted to {_label(mime)}")
    return file.with_bytes(
        with_extension(file.name, mime),
        mime,
        out,
        width=dims[0],
        height=dims[1],
        was_converted=file.was_converted or converted,
        was_resized=True,
        metadata_removed=True,
        notes=notes,
    )


def fit_to_budget(
    files: Sequence[MediaFile],
    budget: int,
    *,
    shrink_all: Callable[[list[tuple[MediaFile, int]]], list[MediaFile | MediaError]] | None = None,
) -> list[MediaFile]:
    """The files, in order, with still images reduced so that all add up to ``budget`` bytes.

    Files already within the budget come back unchanged. Only ``fittable`` files change.
    Raises FitError (with a message for the user) when the other files leave too little room.

    ``shrink_all`` runs a round of ``shrink`` calls, given (file, target) pairs, and returns
    each result or the MediaError it raised, in order; by default here, one after the other
    (messaging/compose/uploads.py runs them in child processes, side by side).
    """
    shrink_all = shrink_all or _shrink_here
    files = list(files)
    if sum(f.size for f in files) <= budget:
        return files
    images = [i for i, f in enumerate(files) if f.fittable]
    fixed = sum(f.size for i, f in enumerate(files) if i not in images)
    available = budget - fixed
    if not images or available < MIN_IMAGE_BYTES * len(images):
        raise FitError(fit_refusal(files, images, fixed, budget))
    weights = [max(1, (files[i].width or 1) * (files[i].height or 1)) for i in images]
    caps = [files[i].size for i in images]
    targets = _water_fill(available, caps, weights)
    results = {
        i: files[i] for i, target in zip(images, targets, strict=True) if files[i].size <= target
    }
    first = [(i, target) for i, target in zip(images, targets, strict=True) if i not in results]
    for (index, _), result in zip(
        first, shrink_all([(files[i], t) for i, t in first]), strict=True
    ):
        if isinstance(result, MediaError):
            raise result
        results[index] = result
    # Second round: bytes the first round left unused go back to the images that were reduced.
    spare = available - sum(r.size for r in results.values())
    reduced = [i for i in images if results[i] is not files[i]]
    if reduced and spare > 0.05 * available:
        extra = _water_fill(
            spare,
            [files[i].size - results[i].size for i in reduced],
            [weights[images.index(i)] for i in reduced],
        )
        second = [
            (index, results[index].size + more)
            for index, more in zip(reduced, extra, strict=True)
            # Less is not worth a second decode (and an image decoded at reduced scale, which
            # may stop short of its share, could not use it).
            if more > 0.15 * results[index].size
        ]
        candidates = shrink_all([(files[i], t) for i, t in second])
        for (index, _), candidate in zip(second, candidates, strict=True):
            if isinstance(candidate, MediaFile) and candidate.size > results[index].size:
                results[index] = candidate
    fitted = [results.get(i, f) for i, f in enumerate(files)]
    if sum(f.size for f in fitted) > budget:  # pragma: no cover - each result is within its share
        raise FitError(fit_refusal(files, images, fixed, budget))
    return fitted


def _shrink_here(jobs: list[tuple[MediaFile, int]]) -> list[MediaFile | MediaError]:
    results: list[MediaFile | MediaError] = []
    for file, target in jobs:
        try:
            results.append(shrink(file, target))
        except MediaError as error:
            results.append(error)
    return results


def fit_refusal(files: Sequence[MediaFile], images: list[int], fixed: int, budget: int) -> str:
    others = [f for i, f in enumerate(files) if i not in images]
    if not images:
        return _violation(files, "attachments_too_large")
    names = ", ".join(f"“{f.name}”" for f in others[:3]) + (" …" if len(others) > 3 else "")
    if fixed > budget:
        return (
            f"The files that cannot be made smaller ({names}) add up to "
            f"{limits.format_size(fixed)}, more than the {limits.format_size(budget)} RingCentral "
            f"accepts per message. Remove or shrink them to save at least "
            f"{limits.format_size(fixed - budget, round_up=True)}."
        )
    return (
        f"The files that cannot be made smaller ({names}) add up to {limits.format_size(fixed)}, "
        f"which leaves too little of the {limits.format_size(budget)} RingCentral accepts per "
        f"message for {len(images)} photo{'s' if len(images) != 1 else ''}. "
        "Remove some files and try again."
    )
