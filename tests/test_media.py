"""messaging/compose/media/: sniffing, names, normalising images and fitting them to the budget."""

import io
import struct
import zlib

import pytest
from PIL import Image

from messaging.compose import media
from messaging.ringcentral import limits
from tests import media_samples as samples

BUDGET = limits.MAX_ATTACHMENTS_BYTES


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def left_pixel_is_red(image: Image.Image) -> bool:
    r, g, b = image.convert("RGB").getpixel((2, image.height // 2))
    return r > 150 and b < 100


# --- Names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("photo.jpg", "photo.jpg"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Desktop\\plan.pdf", "plan.pdf"),
        ("bell\x07and\x00nul\r\n.txt", "bellandnul .txt"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),  # right-to-left override removed
        ("  .hidden  ", "hidden"),
        ("a<b>c:d|e?.txt", "a_b_c_d_e_.txt"),
        ("CON.txt", "_CON.txt"),
        ("", "attachment"),
        ("////", "attachment"),
        ("tab\tand  spaces.txt", "tab and spaces.txt"),
    ],
)
def test_file_names_are_cleaned_for_display_and_multipart(given, expected):
    assert media.clean_filename(given) == expected


def test_a_500_character_name_is_capped_and_keeps_its_extension():
    name = media.clean_filename("x" * 500 + ".pdf")
    assert len(name) == media.MAX_NAME_CHARS
    assert name.endswith(".pdf")


def test_extension_follows_the_content_type():
    assert media.with_extension("photo.heic", "image/jpeg") == "photo.jpg"
    assert media.with_extension("scan", "application/pdf") == "scan.pdf"
    assert media.with_extension("report.final", "application/pdf") == "report.final.pdf"
    assert media.with_extension("clip.JPEG", "image/jpeg") == "clip.JPEG"


# --- Sniffing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (samples.jpeg(), "image/jpeg"),
        (samples.png(), "image/png"),
        (samples.encode(samples.two_tone(8, 8), "GIF"), "image/gif"),
        (samples.encode(samples.two_tone(8, 8), "WEBP"), "image/webp"),
        (samples.encode(samples.two_tone(8, 8), "BMP"), "image/bmp"),
        (samples.encode(samples.two_tone(8, 8), "TIFF"), "image/tiff"),
        (samples.heic(), "image/heic"),
        (samples.avif(), "image/avif"),
        (samples.mp4(video=True), "video/mp4"),
        (samples.mp4(video=False), "audio/mp4"),
        (b"\0\0\0\x14ftypqt  \0\0\0\0qt  " + b"\0" * 64, "video/quicktime"),
        (b"\0\0\0\x14ftyp3gp4\0\0\0\x003gp4" + b"\0" * 64, "video/3gpp"),
        (b"\0\0\0\x14ftypM4A \0\0\0\0M4A " + b"\0" * 64, "audio/mp4"),
        (b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 40, "audio/wav"),
        (b"RIFF\x24\0\0\0AVI LIST" + b"\0" * 40, "video/avi"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm" + b"\0" * 40, "video/webm"),
        (b"OggS\0\x02" + b"\0" * 20 + b"\x01\x1e\x01vorbis" + b"\0" * 40, "audio/ogg"),
        (b"OggS\0\x02" + b"\0" * 20 + b"\x01\x2a\x80theora" + b"\0" * 40, "video/ogg"),
        (b"ID3\x04\0\0\0\0\0\x0a" + b"\0" * 64, "audio/mpeg"),
        (b"#!AMR\n" + b"\0" * 32, "audio/amr"),
        (b"FLV\x01\x05\0\0\0\x09" + b"\0" * 32, "video/x-flv"),
        (b"\0\0\x01\xba" + b"\x44" * 40, "video/mpeg"),
        (
            bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
            + b"\0" * 30
            + bytes.fromhex("c0ef19bc4d5bcf11a8fd00805f5c442b"),
            "video/x-ms-wmv",
        ),
        (samples.zip_file({"notes.txt": b"hello"}), "application/zip"),
        (b"\x1f\x8b\x08\0\0\0\0\0\0\x03" + b"\0" * 20, "application/gzip"),
        (samples.pdf(400), "application/pdf"),
        (b"{\\rtf1\\ansi Hello}", "application/rtf"),
        (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nEND:VCARD\r\n", "text/vcard"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "text/calendar"),
        (b"name,phone\nAnn,+16505550111\nBo,+16505550112\n", "text/csv"),
        (b"Dear team,\nthe meeting moved to 3 pm.\n", "text/plain"),
        ("Caf\u00e9 cr\u00e8me \u2615\n".encode(), "text/plain"),
        ("Grüße".encode("cp1252"), "text/plain"),
        (b"\xef\xbb\xbfBOM text", "text/plain"),
        ("UTF-16 text".encode("utf-16"), "text/plain"),
        (b"<!DOCTYPE html><html><body>Hi</body></html>", "text/html"),
        (
            b'<?xml version="1.0"?>\n<!-- logo -->\n<svg xmlns="http://www.w3.org/2000/svg"/>',
            "image/svg+xml",
        ),
        (b"MZ Tours: itinerary for May\n", "text/plain"),  # text, not a program
        (b"BMW service dates\n", "text/plain"),  # "BM" but not a bitmap
    ],
)
def test_content_decides_the_type(data, mime):
    assert media.sniff(data, "whatever.bin").mime == mime


def test_the_extension_only_breaks_the_tie_between_csv_and_plain_text():
    one_row = b"a,b\n"
    assert media.sniff(one_row, "data.csv").mime == "text/csv"
    assert media.sniff(b"a,b,c\nragged\n", "data.csv").mime == "text/csv"
    assert media.sniff(one_row, "data.dat").mime == "text/plain"
    assert media.sniff(b"a,b\nc,d\n", "notes.txt").mime == "text/plain"
    # The extension never makes a file text: a program called .csv is still a program.
    assert media.sniff(samples.windows_program(), "data.csv").refusal


def test_text_kinds_may_be_mixed_up_and_the_name_follows_the_content():
    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann\r\nEND:VCARD\r\n"
    result = media.ingest("ann.txt", card)
    assert (result.content_type, result.name) == ("text/vcard", "ann.vcf")
    assert media.ingest("song.mp4", samples.mp4(video=False)).name == "song.m4a"


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (samples.windows_program(), "Windows program"),
        (b"\x7fELF\x02\x01\x01" + b"\0" * 64, "Linux program"),
        (b"#!/bin/sh\nrm -rf ~\n", "script"),
        (b"\xca\xfe\xba\xbe\0\0\0\x34" + b"\0" * 16, "Java class or macOS program"),
        (samples.zip_file({"META-INF/MANIFEST.MF": b"Main-Class: X\n"}), "Java program"),
        (samples.zip_file({"AndroidManifest.xml": b"", "classes.dex": b""}), "Android app"),
        (samples.zip_file({"readme.txt": b"hi", "setup.exe": b"MZ"}), "ZIP archive"),
    ],
)
def test_programs_and_scripts_are_recognised_and_refused(data, label):
    sniffed = media.sniff(data)
    assert sniffed.label == label
    assert sniffed.refusal
    with pytest.raises(media.MediaError, match="program"):
        media.ingest("harmless.zip", data)


def test_an_executable_renamed_jpg_is_refused_as_a_program():
    with pytest.raises(media.MediaError) as refused:
        media.ingest("holiday.jpg", samples.windows_program())
    assert refused.value.message == "“holiday.jpg” is a program, and programs cannot be sent."


def test_a_text_named_like_a_photo_is_refused_with_what_it_really_is():
    with pytest.raises(media.MediaError) as refused:
        media.ingest("photo.jpg", b"just some words\n")
    assert "named like a JPEG image" in refused.value.message
    assert "Plain text" in refused.value.message


def test_a_png_named_jpg_is_accepted_and_renamed():
    result = media.ingest("scan.jpg", samples.png())
    assert (result.content_type, result.name) == ("image/png", "scan.png")


def test_unsupported_types_get_limits_message_with_a_readable_label():
    icon = b"\0\0\x01\0\x01\0\x10\x10\0\0\x01\0\x20\0" + b"\0" * 64
    with pytest.raises(media.MediaError) as refused:
        media.ingest("favicon.ico", icon)
    assert refused.value.message.startswith("“favicon.ico” (ICO file) cannot be sent")
    assert limits.supported_summary() in refused.value.message


def test_empty_files_and_unknown_binary_are_refused():
    with pytest.raises(media.MediaError, match=r"“empty.txt” is empty \(0 bytes\)"):
        media.ingest("empty.txt", b"")
    with pytest.raises(media.MediaError, match="unknown type"):
        media.ingest("blob.dat", bytes(range(256)) * 4)


def test_svg_with_entity_declarations_is_refused():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg">&b;</svg>'
    )
    with pytest.raises(media.MediaError, match="entities"):
        media.ingest("logo.svg", bomb)


def test_non_images_are_never_altered():
    data = samples.pdf(5000)
    result = media.ingest("report.pdf", data)
    assert result.data == data
    assert not result.fittable
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><!-- keep me --></svg>'
    assert media.ingest("logo.svg", svg).data == svg


# --- Damaged, truncated, polyglot ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cut.jpg", samples.jpeg(200, 200)[:-300]),
        ("cut.png", samples.png(200, 200)[:-40]),
        ("cut.gif", samples.encode(samples.two_tone(50, 50), "GIF")[:-20]),
        ("cut.webp", samples.encode(samples.two_tone(50, 50), "WEBP")[:-20]),
        ("cut.heic", samples.heic(200, 200)[:-200]),
        ("cut.pdf", samples.pdf(500)[:-20]),
        ("cut.zip", samples.zip_file({"a.txt": b"x" * 500})[:-30]),
    ],
)
def test_truncated_files_are_refused_with_a_clear_message(name, data):
    with pytest.raises(media.MediaError) as refused:
        media.ingest(name, data)
    assert f"“{name}”" in refused.value.message
    assert "damaged" in refused.value.message or "cut off" in refused.value.message


def test_png_with_a_bad_checksum_is_refused():
    data = bytearray(samples.png())
    data[40] ^= 0xFF
    with pytest.raises(media.MediaError, match="damaged"):
        media.ingest("x.png", bytes(data))


def test_a_zip_appended_to_a_jpeg_is_cut_off_and_the_photo_kept():
    photo = samples.jpeg(80, 60)
    polyglot = photo + samples.zip_file({"payload.exe": b"MZ" + b"\0" * 100})
    result = media.ingest("photo.jpg", polyglot)
    assert b"PK\x03\x04" not in result.data
    assert any("extra data after the image removed" in note for note in result.notes)
    assert decoded(result.data).size == (80, 60)


def test_data_hidden_after_a_pdf_is_refused():
    with pytest.raises(media.MediaError, match="hidden after the end"):
        media.ingest("doc.pdf", samples.pdf(600) + samples.zip_file({"a": b"b"}))


def test_text_with_binary_inside_is_not_text():
    assert media.sniff(b"hello\nworld\x00\x01\x02").mime == "application/octet-stream"


def test_decompression_bomb_is_refused_before_decoding():
    # A valid PNG header declaring 100,000 × 100,000 pixels, with next to no data.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    chunk += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    bomb = b"\x89PNG\r\n\x1a\n" + chunk + b"\0\0\0\0IEND\xaeB`\x82"
    with pytest.raises(media.MediaError) as refused:
        media.ingest("huge.png", bomb)
    assert "megapixels" in refused.value.message or "enormous" in refused.value.message


def test_an_image_just_above_the_pixel_cap_is_refused_with_its_size():
    width, height = 8000, media.MAX_IMAGE_PIXELS // 8000 + 1
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
    header += struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    with pytest.raises(media.MediaError, match=r"8,000 × 6,251 pixels \(50 megapixels\)"):
        media.ingest("panorama.png", header + b"\0\0\0\0IEND\xaeB`\x82")


# --- Normalising images ---------------------------------------------------------------------------


def test_exif_orientation_is_applied_and_gps_stripped():
    original = samples.jpeg(80, 40, orientation=6, gps=True, camera="Phone")
    assert decoded(original).getexif().get(samples.GPS_IFD)
    result = media.ingest("sideways.jpg", original)
    image = decoded(result.data)
    assert image.size == (40, 80)  # turned upright
    assert not image.getexif()  # no orientation, GPS or camera left
    assert b"Exif" not in result.data
    assert result.metadata_removed
    assert "turned upright" in result.notes


def test_metadata_is_removed_from_an_upright_jpeg_without_re_encoding():
    original = samples.jpeg(120, 90, gps=True, camera="Phone", quality=70)
    result = media.ingest("upright.jpg", original)
    assert b"Exif" not in result.data
    assert decoded(result.data).tobytes() == decoded(original).tobytes()  # same pixels
    assert result.size < len(original)


def test_png_text_chunks_are_removed_losslessly():
    original = samples.png(text="Taken at 1 Main St")
    result = media.ingest("screen.png", original)
    assert b"Main St" not in result.data
    assert decoded(result.data).tobytes() == decoded(original).tobytes()


def test_webp_exif_is_removed():
    original = samples.encode(
        samples.two_tone(40, 30), "WEBP", exif=samples.exif(gps=True, camera="Phone")
    )
    assert b"EXIF" in original
    result = media.ingest("pic.webp", original)
    assert b"EXIF" not in result.data
    assert decoded(result.data).size == (40, 30)


def test_keeping_metadata_is_possible_for_callers_that_ask():
    original = samples.jpeg(40, 30, gps=True)
    assert media.ingest("a.jpg", original, strip_metadata=False).data == original


def test_heic_photo_becomes_an_upright_jpeg():
    original = samples.heic(80, 40, orientation=6, gps=True)
    result = media.ingest("IMG_0001.HEIC", original)
    assert (result.content_type, result.name) == ("image/jpeg", "IMG_0001.jpg")
    image = decoded(result.data)
    assert image.format == "JPEG"
    assert image.size == (40, 80)
    assert not image.getexif()
    assert result.was_converted and result.fittable
    assert result.original_content_type == "image/heic"
    assert result.original_size == len(original)
    assert "converted from HEIC photo to JPEG image" in result.notes


def test_avif_becomes_jpeg_and_bmp_becomes_png():
    assert media.ingest("a.avif", samples.avif()).content_type == "image/jpeg"
    bmp = media.ingest("b.bmp", samples.encode(samples.two_tone(20, 10), "BMP"))
    assert (bmp.content_type, bmp.name) == ("image/png", "b.png")
    assert left_pixel_is_red(decoded(bmp.data))


def test_animated_gif_stays_animated_and_is_not_fitted():
    result = media.ingest("wave.gif", samples.gif_animated())
    assert decoded(result.data).n_frames == 3
    assert not result.fittable


def test_images_get_a_small_thumbnail():
    result = media.ingest("big.jpg", samples.jpeg(1600, 1200))
    thumb = decoded(result.thumbnail)
    assert max(thumb.size) == media.THUMBNAIL_EDGE
    assert media.ingest("doc.pdf", samples.pdf(500)).thumbnail is None


# --- Fitting --------------------------------------------------------------------------------------


def test_water_fill_shares_in_proportion_and_passes_on_what_small_ones_leave():
    assert media._water_fill(900, [1000, 1000, 1000], [1, 1, 1]) == [300, 300, 300]
    assert media._water_fill(900, [100, 1000, 1000], [1, 1, 1]) == [100, 400, 400]
    assert media._water_fill(900, [1000, 1000], [2, 1]) == [600, 300]


def test_files_within_budget_come_back_unchanged():
    files = [media.ingest("a.jpg", samples.jpeg()), media.ingest("b.pdf", samples.pdf(800))]
    assert media.fit_to_budget(files, BUDGET) == files


def test_four_twelve_megapixel_photos_fit_and_each_keeps_a_fair_share():
    photos = [media.ingest(f"IMG_{i}.jpg", samples.photo(seed=i)) for i in range(4)]
    assert sum(p.size for p in photos) > 3 * BUDGET
    fitted = media.fit_to_budget(photos, BUDGET)
    total = sum(f.size for f in fitted)
    assert total <= BUDGET
    assert total >= 0.85 * BUDGET  # the budget is spent, not wasted
    fair = BUDGET / 4
    for f in fitted:
        assert 0.75 * fair <= f.size <= fair * 1.05
        assert f.was_resized and f.content_type == "image/jpeg"
        assert decoded(f.data).size == (f.width, f.height)
        assert f.width >= 1000  # reduced, not crushed
        assert any(note.startswith("reduced from 4,000 × 3,000") for note in f.notes)


def test_photos_share_what_other_files_leave():
    report = media.ingest("report.pdf", samples.pdf(900_000))
    photos = [media.ingest(f"p{i}.jpg", samples.photo(2000, 1500, seed=10 + i)) for i in range(2)]
    fitted = media.fit_to_budget([report, *photos], BUDGET)
    assert fitted[0] is report  # never altered
    assert sum(f.size for f in fitted) <= BUDGET
    assert all(f.size >= 0.75 * 300_000 for f in fitted[1:])


def test_small_images_keep_their_size_and_leave_their_share_to_big_ones():
    small = media.ingest("icon.png", samples.png(40, 40))
    big = [media.ingest(f"b{i}.jpg", samples.photo(3000, 2000, seed=20 + i)) for i in range(2)]
    fitted = media.fit_to_budget([small, *big], BUDGET)
    assert fitted[0] is small
    assert sum(f.size for f in fitted) <= BUDGET
    assert min(f.size for f in fitted[1:]) > 0.4 * (BUDGET - small.size)


def test_transparent_png_stays_png_when_fitted():
    image = samples.photo(2400, 1800, seed=30)
    rgba = decoded(image).convert("RGBA")
    rgba.putalpha(200)
    original = media.ingest("overlay.png", samples.encode(rgba, "PNG"))
    fitted = media.shrink(original, 400_000)
    assert fitted.content_type == "image/png" and fitted.size <= 400_000
    assert decoded(fitted.data).mode == "RGBA"


def test_fitting_refuses_when_other_files_leave_no_room():
    report = media.ingest("report.pdf", samples.pdf(BUDGET - 1000))
    photo = media.ingest("p.jpg", samples.photo(2000, 1500, seed=40))
    with pytest.raises(media.FitError) as refused:
        media.fit_to_budget([report, photo], BUDGET)
    assert "“report.pdf”" in refused.value.message
    assert "Remove some files" in refused.value.message


def test_without_images_an_oversized_set_gets_limits_own_message():
    files = [media.ingest("a.pdf", samples.pdf(BUDGET + 1))]
    with pytest.raises(media.FitError) as refused:
        media.fit_to_budget(files, BUDGET)
    expected = [v.message for v in limits.check_attachments(files)]
    assert refused.value.message in expected
