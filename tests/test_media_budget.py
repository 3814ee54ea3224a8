"""Image work has a budget: what a file costs to decode is read from its header and refused
over the budget; checking and fitting run in a child process whose memory and CPU are limited,
so a runaway stops there. (Time and memory are measured by tests/bench/test_bench_hostile.py,
never asserted here.)"""

import pytest

from messaging.compose import media, uploads
from messaging.compose.media import cost, isolation
from messaging.ringcentral import limits
from tests import media_samples as samples
from tests import media_steps

BUDGET = media.DEFAULT_BUDGET


def refusal(name, data, budget=BUDGET) -> str:
    with pytest.raises(media.MediaError) as refused:
        media.ingest(name, data, budget=budget)
    return refused.value.message


# --- Refused from the header ------------------------------------------------------------------


def test_a_9_kb_gif_of_400_frames_on_a_7000_pixel_screen_is_refused_from_its_header():
    gif = samples.gif_screen_bomb()
    assert len(gif) < 10_000
    message = refusal("party.gif", gif)
    assert message.startswith("“party.gif” is 7,000 × 7,000 pixels with 400 frames")
    assert "(19,600 megapixels in all)" in message
    assert "up to 100 megapixels in all frames together" in message


def test_frames_are_counted_only_one_past_the_most_accepted():
    measured = cost._gif(samples.gif_screen_bomb(screen=(2, 2), frames=5000))
    assert measured.frames == media.files.MAX_FRAMES + 1
    assert "animation of 2,001 frames" in refusal("long.gif", samples.gif_screen_bomb((2, 2), 5000))


def test_the_pixels_budget_follows_the_setting_through_an_upload(settings, tmp_path):
    settings.COMPOSE_IMAGE_MAX_PIXELS = 1_000
    path = tmp_path / "wave.gif"
    path.write_bytes(samples.gif_animated(frames=3, size=(32, 32)))
    with pytest.raises(media.MediaError, match=r"3,072 pixels|0\.0 megapixels in all"):
        uploads.ingest_path(path)


def test_a_jpeg_declaring_an_enormous_size_is_refused_with_its_size():
    data = samples.with_jpeg_size(samples.jpeg(), 60_000, 60_000)
    assert "60,000 × 60,000 pixels (3600 megapixels)" in refusal("scan.jpg", data)


def test_a_progressive_jpeg_is_refused_when_its_coefficients_need_too_much_memory():
    data = samples.with_jpeg_size(samples.jpeg_progressive(subsampling=0), 7000, 7000)
    message = refusal("poster.jpg", data)
    # 49 megapixels at 4 bytes, and 2 bytes for each of 3 full-size components.
    assert "(progressive JPEG image, 7,000 × 7,000 pixels) needs about 490 MB" in message
    assert "gives one file 240 MB. Save it as an ordinary (not progressive) JPEG" in message


def test_a_jpeg_of_150_scans_is_refused():
    assert "more than 100 scans" in refusal("x.jpg", samples.jpeg_many_scans(150))


def test_an_animated_webp_of_400_frames_on_a_large_canvas_is_refused_before_pillow_opens_it():
    data = samples.with_webp_canvas(samples.webp_animated(400), 4000, 4000)
    message = refusal("sticker.webp", data)
    assert "4,000 × 4,000 pixels with" in message and "megapixels in all" in message


def test_a_webp_canvas_of_16000_pixels_a_side_is_refused():
    data = samples.with_webp_canvas(samples.webp_animated(3), 16_000, 16_000)
    assert "16,000 × 16,000 pixels (256 megapixels)" in refusal("big.webp", data)


def test_a_heic_declaring_81_megapixels_is_refused_with_its_size():
    data = samples.with_heic_size(samples.heic(64, 64), 9000, 9000)
    assert "9,000 × 9,000 pixels (81 megapixels)" in refusal("IMG_1.heic", data)


def test_a_48_megapixel_heic_is_refused_for_the_memory_its_decoding_needs():
    data = samples.with_heic_size(samples.heic(64, 64), 8064, 6048)
    assert refusal("IMG_2.heic", data) == (
        "“IMG_2.heic” (HEIC photo, 8,064 × 6,048 pixels) needs about 391 MB of memory to open; "
        "the portal gives one file 240 MB. Save it as a JPEG or a smaller copy, and attach that."
    )
    roomier = media.Budget(pixels=BUDGET.pixels, memory=400_000_000)
    with pytest.raises(media.MediaError, match="damaged"):  # past the budget: decoded (and bad)
        media.ingest("IMG_2.heic", data, budget=roomier)


def test_a_heic_of_three_large_images_is_refused_for_their_total():
    data = samples.with_heic_size(samples.heic_frames(3), 8000, 5000)
    assert "8,000 × 5,000 pixels with 3 frames (120 megapixels in all)" in refusal("b.heic", data)


def test_a_tiff_of_400_large_pages_is_refused_from_its_directories():
    data = samples.tiff_pages(400, (7000, 7000))
    assert len(data) < 50_000
    assert "7,000 × 7,000 pixels with 400 frames" in refusal("fax.tiff", data)


def test_a_tiff_whose_pages_loop_is_damaged():
    data = bytearray(samples.tiff_pages(2, (10, 10)))
    first = int.from_bytes(data[4:8], "little")
    # The second page's "next page" points back at the first.
    data[-4:] = first.to_bytes(4, "little")
    assert "damaged" in refusal("loop.tif", bytes(data))


def test_an_svg_named_like_a_photo_is_refused_like_other_mismatches():
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="4" height="4"/></svg>'
    message = refusal("holiday.jpg", svg)
    assert message.startswith("“holiday.jpg” is named like a JPEG image but contains")
    assert media.ingest("logo.svg", svg).content_type == "image/svg+xml"
    with pytest.raises(media.MediaError, match="named like"):
        media.ingest("logo.svg", samples.png())


# --- Bounded cost -------------------------------------------------------------------------------


def test_a_solid_7000_pixel_square_rgba_png_is_checked_in_the_child_within_its_limits():
    used = []
    result = uploads.ingest_source("screen.png", samples.png_solid(), on_usage=used.append)
    assert (result.width, result.height) == (7000, 7000)
    assert result.content_type == "image/png" and result.fittable
    assert result.thumbnail and used and used[0].peak_bytes > 0


def test_fitting_in_child_processes_fits_the_budget_and_keeps_previews(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"IMG_{i}.jpg")
        paths[-1].write_bytes(samples.photo(2400, 1800, seed=60 + i))
    files = [uploads.ingest_path(p) for p in paths]
    fitted = uploads.fit_photos(files)
    assert sum(f.size for f in fitted) <= limits.MAX_ATTACHMENTS_BYTES
    for fit, file in zip(fitted, files, strict=True):
        assert fit.was_resized and fit.thumbnail == file.thumbnail


# --- The child process ------------------------------------------------------------------------

TIGHT = isolation.Limits(memory=50_000_000, cpu_seconds=1, wall_seconds=20)


def test_a_step_that_takes_more_memory_than_its_limit_is_stopped_with_a_message():
    with pytest.raises(isolation.Stopped) as stopped:
        isolation.run(media_steps.allocate, 200_000_000, limits=TIGHT, name="big.png")
    assert stopped.value.message == (
        "“big.png” needs more memory to check than the portal gives one file (50 MB). "
        "Save a smaller copy and attach that."
    )
    assert isolation.run(media_steps.allocate, 10_000_000, limits=TIGHT, name="x") == 10_000_000


def test_a_step_that_runs_past_its_cpu_limit_is_stopped_with_a_message():
    with pytest.raises(isolation.Stopped, match=r"“loop.gif” takes too long to check"):
        isolation.run(media_steps.spin, limits=TIGHT, name="loop.gif")


def test_a_refusal_in_the_child_reaches_the_caller_as_it_was():
    with pytest.raises(media.MediaError) as refused:
        isolation.run(media_steps.refuse, limits=TIGHT, name="odd.bin")
    assert refused.value.message == "“odd.bin” is refused by its step."


def test_a_child_that_dies_gives_a_clear_message():
    with pytest.raises(isolation.Stopped, match="could not be checked"):
        isolation.run(media_steps.die, limits=TIGHT, name="odd.bin")


def test_steps_side_by_side_each_give_their_own_result_or_refusal():
    results = isolation.run_all(
        [
            (media_steps.allocate, (1000,), "a"),
            (media_steps.refuse, (), "b"),
            (media_steps.allocate, (2000,), "c"),
        ],
        limits=TIGHT,
    )
    assert results[0] == 1000 and results[2] == 2000
    assert isinstance(results[1], media.MediaError)


# --- Through the compose page ------------------------------------------------------------------

UPLOAD = "/messages/compose/upload/?form=5d1c2b8e-6f1a-4c59-9d2e-0b7f1c3a4e51"


@pytest.mark.django_db
def test_uploading_the_hostile_gif_gets_a_400_that_names_the_file_and_the_budget(bob_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    gif = SimpleUploadedFile("party.gif", samples.gif_screen_bomb(), "image/gif")
    response = bob_client.post(UPLOAD, {"file": gif})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("“party.gif” is 7,000 × 7,000 pixels with 400 frames")
    assert "megapixels in all frames together" in error


@pytest.mark.django_db
def test_the_memory_setting_sets_the_header_budget_of_an_upload(bob_client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.COMPOSE_MEDIA_MEMORY_LIMIT = 5_000_000
    photo = SimpleUploadedFile("IMG_1.jpg", samples.jpeg(1600, 1200), "image/jpeg")
    response = bob_client.post(UPLOAD, {"file": photo})
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "“IMG_1.jpg” (JPEG image, 1,600 × 1,200 pixels) needs about 8 MB of memory to open; "
        "the portal gives one file 4 MB."
    )


def _check_in_worker(data: bytes) -> str:
    return uploads.ingest_source("wave.gif", data).content_type


def test_a_file_is_checked_in_a_child_from_a_celery_prefork_worker_too():
    import billiard

    # A worker started afresh, as Celery's are before any upload is checked: a fork of this
    # process would share the forkserver this process started, which a worker never does.
    with billiard.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_check_in_worker, (samples.gif_animated(),)) == "image/gif"
