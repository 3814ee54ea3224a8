"""Reading an uploaded contacts file, CSV or Excel (.xlsx), a row at a time.

The kind is told by the bytes, not the name: an .xlsx file is a ZIP archive, read by openpyxl
in read-only mode (rows streamed, not the whole sheet in memory); anything else must be text,
read by the csv module after its encoding is found (a BOM, UTF-8, else charset-normalizer's
best guess), with its delimiter sniffed. Everything that cannot be read raises FileRefused
with a sentence for the person who uploaded the file.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import charset_normalizer
from django.core.files.storage import default_storage

# Bytes looked at to tell the kind and the encoding.
SAMPLE_BYTES = 64 * 1024
# Rows in one file (after the header). A 50 MB file of short rows holds more; a bigger list is
# imported in several files.
MAX_ROWS = 100_000
MAX_COLUMNS = 100
MAX_CELL_CHARACTERS = 5_000
CSV = "csv"
XLSX = "xlsx"


class FileRefused(ValueError):
    """The file cannot be imported; `str(error)` says why, for the uploader."""


def kind_of(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return XLSX
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRefused(
            "This is an old Excel (.xls) or other Office file. Save it as .xlsx or CSV and "
            "upload that."
        )
    if not head.strip():
        raise FileRefused("The file is empty.")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise FileRefused("This is not a CSV or Excel file. Upload a .csv or .xlsx file.")
    return CSV


def encoding_of(head: bytes) -> str:
    """The text encoding of a CSV file from its first bytes."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        # The sample may end inside a character: up to 3 bytes of it may be cut off.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(head).best()
    if best is None:
        raise FileRefused(
            "The file's text encoding is not recognised. Save it as CSV UTF-8 and upload that."
        )
    return best.encoding


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        # A phone number typed into a spreadsheet becomes a number: 6505550100.0.
        return str(int(value))
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value).strip()


def _checked(number: int, cells: list[str]) -> list[str]:
    if len(cells) > MAX_COLUMNS:
        raise FileRefused(f"Row {number} has more than {MAX_COLUMNS} columns.")
    if number - 1 > MAX_ROWS:
        raise FileRefused(
            f"The file has more than {MAX_ROWS:,} rows. Split it and import each part."
        )
    return [c[:MAX_CELL_CHARACTERS] for c in cells]


def _csv_rows(binary, encoding: str) -> Iterator[tuple[int, list[str]]]:
    text = io.TextIOWrapper(binary, encoding=encoding, errors="strict", newline="")
    number = 0
    try:
        sample = text.read(SAMPLE_BYTES)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        text.seek(0)
        for cells in csv.reader(text, dialect):
            number += 1
            yield number, _checked(number, [c.strip() for c in cells])
    except UnicodeDecodeError:
        # Text is decoded ahead of the rows, a block at a time: the bad bytes are somewhere
        # after the last row read.
        raise FileRefused(
            f"Part of the file after row {number} is not readable as {encoding} text: the "
            "file mixes encodings. Save it as CSV UTF-8 and upload that."
        ) from None
    except csv.Error as error:
        raise FileRefused(f"Row {number + 1} cannot be read as CSV ({error}).") from None


def _xlsx_rows(binary) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(binary, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError):
        raise FileRefused(
            "This file is not a readable Excel workbook. Save it as .xlsx or CSV and upload that."
        ) from None
    try:
        if not book.worksheets:
            raise FileRefused("The workbook has no sheet.")
        sheet = book.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell(v) for v in values]
            while cells and not cells[-1]:
                cells.pop()
            yield number, _checked(number, cells)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as error:
        if isinstance(error, FileRefused):
            raise
        raise FileRefused("The workbook is damaged and cannot be read to the end.") from None
    finally:
        book.close()


@contextmanager
def rows(stored_name: str, kind: str, encoding: str = "utf-8"):
    """The stored file's rows as (row number, cells), the header row being row 1; rows with
    no cell filled are left out."""
    with default_storage.open(stored_name, "rb") as binary:
        source = _xlsx_rows(binary) if kind == XLSX else _csv_rows(binary, encoding)
        try:
            yield ((n, cells) for n, cells in source if any(cells))
        finally:
            # A reader left before the end closes the workbook now, not when collected.
            source.close()


def header_and_preview(stored_name: str, kind: str, encoding: str, count: int = 10):
    """The header row and the first `count` rows after it; FileRefused when there are none."""
    with rows(stored_name, kind, encoding) as found:
        header = next(found, None)
        if header is None:
            raise FileRefused("The file is empty.")
        preview = []
        for row in found:
            preview.append(row)
            if len(preview) >= count:
                break
    if not preview:
        raise FileRefused("The file has a header row but no contacts under it.")
    return header[1], preview
