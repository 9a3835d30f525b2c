"""A large sheet's XML is checked by expat in a forked child beside the scan: the same
Book and the same first error as checking every chunk in the reading process."""

import os
import struct
import zipfile

import pytest
from engine_cases import write_package

from xlgen.engine import reader
from xlgen.errors import BadWorkbook

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")

ROWS = 400  # about 40 KiB of sheet XML: many 1 KiB chunks


def _rows(bad_ref_at=None, bad_xml_at=None, dtd=False) -> str:
    rows = []
    for r in range(1, ROWS + 1):
        ref = "XFE1" if r == bad_ref_at else f"B{r}"  # XFE is past the last column
        cell = f'<c r="A{r}"><v>{r}</v></c><c r="{ref}"><f>A{r}*2</f><v>{2 * r}</v></c>'
        if r == bad_xml_at:
            cell += "<c r='C1'><v>1</v></c></oops>"
        rows.append(f'<row r="{r}">{cell}</row>')
    return "".join(rows)


def _read(path, beside: bool, monkeypatch):
    monkeypatch.setattr(reader, "CHUNK", 1024)
    monkeypatch.setattr(reader, "VALIDATE_BESIDE_FROM", 0 if beside else 1 << 62)
    try:
        book = reader.read_xlsx(path)
    except BadWorkbook as exc:
        return "error", str(exc)
    sheet = book.sheets[0]
    return list(sheet.formulas.items()), list(sheet.cached.items()), list(sheet.constants.items())


@pytest.mark.parametrize("case", [
    {},                                      # well-formed: the same Book
    {"bad_xml_at": ROWS - 5},                # XML broken near the end
    {"bad_xml_at": 3},                       # XML broken near the start
    {"bad_ref_at": 10, "bad_xml_at": ROWS - 5},   # the scanner's error comes first
    {"bad_ref_at": ROWS - 5, "bad_xml_at": 10},   # expat's error comes first
    {"bad_ref_at": 200, "bad_xml_at": 200},  # both in one chunk: expat checks a chunk before it is scanned
])
def test_beside_gives_what_inline_gives(tmp_path, monkeypatch, case):
    path = write_package(tmp_path / "book.xlsx", [("sheet", _rows(**case))])
    inline = _read(path, False, monkeypatch)
    beside = _read(path, True, monkeypatch)
    assert beside == inline
    assert (inline[0] == "error") == bool(case)


def _rewrite_sheet(path, target, transform) -> None:
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = transform(data)
            out.writestr(info, data)


def test_beside_refuses_a_dtd(tmp_path, monkeypatch):
    path = write_package(tmp_path / "book.xlsx", [("sheet", _rows())])
    dtd_path = tmp_path / "dtd.xlsx"
    _rewrite_sheet(path, dtd_path, lambda data: data.replace(b"?>\n", b'?>\n<!DOCTYPE worksheet [<!ENTITY e "x">]>\n', 1))
    inline = _read(dtd_path, False, monkeypatch)
    assert inline[0] == "error" and "DTD or entity" in inline[1]
    assert _read(dtd_path, True, monkeypatch) == inline


def test_beside_reads_the_file_the_parent_opened(tmp_path, monkeypatch):
    """The child checks the bytes this process reads, even if the file is replaced."""
    path = write_package(tmp_path / "book.xlsx", [("sheet", _rows())])
    broken = write_package(tmp_path / "broken.xlsx", [("sheet", _rows(bad_xml_at=3))])
    real_start = reader._ValidatorBeside.start.__func__

    def start_then_replace(cls, pkg, member):
        os.replace(broken, path)  # after the reader opened the good file
        return real_start(cls, pkg, member)

    monkeypatch.setattr(reader._ValidatorBeside, "start", classmethod(start_then_replace))
    formulas, _, _ = _read(path, True, monkeypatch)
    assert len(formulas) == ROWS


def test_a_sheet_in_another_encoding_is_read_whole_by_expat(tmp_path, monkeypatch):
    """The scan stops at the first chunk (not UTF-8), the child's check is not needed."""
    path = write_package(tmp_path / "book.xlsx", [("sheet", _rows())])
    utf16 = tmp_path / "utf16.xlsx"
    _rewrite_sheet(path, utf16, lambda data: data.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
                   .encode("utf-16"))
    inline = _read(utf16, False, monkeypatch)
    assert len(inline[0]) == ROWS and _read(path, False, monkeypatch) == inline
    assert _read(utf16, True, monkeypatch) == inline


def test_a_part_that_lies_about_its_size_gives_the_same_error_beside(tmp_path, monkeypatch):
    """The central directory says the sheet is 10,000 bytes; it inflates to ~40 KB, so its
    CRC fails ten chunks in, where the child meets it too: one message either way."""
    path = write_package(tmp_path / "book.xlsx", [("sheet", _rows())])
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the central directory's first entry
    while not data[entry + 46:].startswith(b"xl/worksheets/sheet1.xml"):
        entry = data.index(b"PK\x01\x02", entry + 4)
    data[entry + 24: entry + 28] = struct.pack("<I", 10_000)  # its uncompressed size
    lying = tmp_path / "lying.xlsx"
    lying.write_bytes(bytes(data))
    inline = _read(lying, False, monkeypatch)
    assert inline[0] == "error" and "sheet1.xml is truncated or corrupt (Bad CRC-32" in inline[1]
    assert _read(lying, True, monkeypatch) == inline
