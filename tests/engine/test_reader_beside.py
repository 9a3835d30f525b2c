"""A large sheet's XML is checked by expat in a forked child beside the scan: the same
Book and the same first error as checking every chunk in the reading process."""

import os
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


def test_beside_refuses_a_dtd(tmp_path, monkeypatch):
    path = write_package(tmp_path / "book.xlsx", [("sheet", _rows())])
    dtd_path = tmp_path / "dtd.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(dtd_path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"?>\n", b'?>\n<!DOCTYPE worksheet [<!ENTITY e "x">]>\n', 1)
            out.writestr(info, data)
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
