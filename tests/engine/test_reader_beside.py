"""A large sheet's XML is checked by expat in a forked child beside the scan, and a very
large sheet's last chunks scanned there too: the same Book and the same first error as
checking and scanning every chunk in the reading process."""

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


def _read(path, beside: bool, monkeypatch, tail_share: float = 0.0):
    """What the reader made of the sheet; tail_share > 0: the child scans that share of it."""
    monkeypatch.setattr(reader, "CHUNK", 1024)
    monkeypatch.setattr(reader, "VALIDATE_BESIDE_FROM", 0 if beside else 1 << 62)
    monkeypatch.setattr(reader, "SCAN_BESIDE_FROM", 0 if tail_share else 1 << 62)
    monkeypatch.setattr(reader, "SCAN_BESIDE_SHARE", tail_share)
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
    for share in (0.1, 0.5, 0.9):
        assert _read(path, True, monkeypatch, share) == inline


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

    def start_then_replace(cls, pkg, member, sheet_reader=None):
        os.replace(broken, path)  # after the reader opened the good file
        return real_start(cls, pkg, member, sheet_reader)

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


def _whole(path, monkeypatch, tail_share: float, taken: list | None = None, late: int = 0):
    """Everything the reader made of a workbook, in order, exactly (or its error); taken
    collects whether this process took the child's cells, each time it looked for them
    (here after waiting for the child; the first `late` times as if they had not come yet,
    so this process scans those chunks itself, as on a busy machine)."""
    monkeypatch.setattr(reader, "CHUNK", 1024)
    monkeypatch.setattr(reader, "VALIDATE_BESIDE_FROM", 0 if tail_share else 1 << 62)
    monkeypatch.setattr(reader, "SCAN_BESIDE_FROM", 0 if tail_share else 1 << 62)
    monkeypatch.setattr(reader, "SCAN_BESIDE_SHARE", tail_share)
    if taken is not None:
        real_take = reader._ValidatorBeside.take_tail

        def take_tail(self, sheet_reader):
            if len(taken) < late:
                taken.append("late")
                return False
            while len(self.frames) < 2 and self._next_frame(block=True):
                pass
            taken.append(real_take(self, sheet_reader))
            return taken[-1]

        monkeypatch.setattr(reader._ValidatorBeside, "take_tail", take_tail)
    try:
        book = reader.read_xlsx(path)
    except BadWorkbook as exc:
        return "error", str(exc)
    finally:
        monkeypatch.undo()

    def items(d):
        return [(key, type(value).__name__, repr(value)) for key, value in d.items()]

    return [(s.name, items(s.constants), items(s.formulas), items(s.cached), items(s.array_refs),
             sorted(s.dynamic_arrays)) for s in book.sheets], book.notes


def _tail_case(tmp_path, name, rows, **package):
    path = write_package(tmp_path / f"{name}.xlsx", [("sheet", "".join(rows))], **package)
    return path


def _plain_rows(first, last):
    return [f'<row r="{r}"><c r="A{r}"><v>{r}.5</v></c><c r="B{r}" s="3"><f>A{r}*2</f><v>{2 * r + 1}</v></c></row>'
            for r in range(first, last + 1)]


def test_the_childs_cells_are_taken_and_are_the_same(tmp_path, monkeypatch):
    path = _tail_case(tmp_path, "plain", _plain_rows(1, ROWS))
    inline = _whole(path, monkeypatch, 0)
    for share in (0.2, 0.3, 0.5):
        taken = []
        assert _whole(path, monkeypatch, share, taken) == inline
        assert taken == [True]
    for late in (1, 3, 8):  # this process scanned some of the child's chunks meanwhile
        taken = []
        assert _whole(path, monkeypatch, 0.3, taken, late) == inline
        assert taken == ["late"] * late + [True]
    taken = []  # ... or all of them: the child's cells come too late
    assert _whole(path, monkeypatch, 0.3, taken, 10_000) == inline
    assert taken and set(taken) == {"late"}


def test_cells_scanned_here_and_by_the_child_merge_as_one_scan(tmp_path, monkeypatch):
    """A cell written twice, once on each side of where the child begins, or twice inside
    its chunks: the first place and the last value, as one scan gives."""
    rows = _plain_rows(1, ROWS)
    rows += [f'<row r="{r}"><c r="A{r}"><v>{-r}</v></c><c r="B{r}"><f>A{r}*3</f><v>{3 * r}</v></c></row>'
             for r in range(1, ROWS, 7)]
    rows += [f'<row r="{r}"><c r="A{r}"><f>B{r}</f><v>{r}</v></c></row>' for r in range(3, ROWS, 11)]
    path = _tail_case(tmp_path, "twice", rows)
    inline = _whole(path, monkeypatch, 0)
    for late in (0, 2, 5):
        taken = []
        assert _whole(path, monkeypatch, 0.3, taken, late) == inline
        assert taken[-1] is True


@pytest.mark.parametrize("tail, taken", [
    # a follower in the child's chunks whose master lies before them: scanned here
    ('<row r="{r}"><c r="A{r}"><f t="shared" si="0"/><v>1</v></c></row>', False),
    # a master and its followers both in the child's chunks: taken
    ('<row r="{r}"><c r="A{r}">{master}<v>1</v></c></row>', True),
    # cells and rows without r=: their place follows from before the child's chunks: scanned here
    ('<row><c><v>7</v></c><c t="b"><v>1</v></c></row>', False),
    # ... or from a row inside them: taken, unless the child's first row is one without r= (None: either)
    ('<row r="{r}"><c r="A{r}"><v>1</v></c></row><row><c><v>7</v></c><c t="b"><v>1</v></c></row>', None),
    # an Excel error, a string, a boolean, an inline string and entities
    ('<row r="{r}"><c r="A{r}" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="B{r}" t="str"><f>"a"&amp;"b"</f>'
     '<v>ab</v></c><c r="C{r}" t="b"><v>1</v></c><c r="D{r}" t="inlineStr"><is><t>x&lt;y</t></is></c></row>',
     False),   # marshal knows no ExcelError: scanned here
    ('<row r="{r}"><c r="B{r}" t="str"><f>"a"&amp;"b"</f><v>ab</v></c><c r="C{r}" t="b"><v>1</v></c>'
     '<c r="D{r}" t="inlineStr"><is><t>x&lt;y</t></is></c><c r="E{r}" t="s"><v>0</v></c></row>', True),
    # array formulas (a legacy one is taken; a dynamic one is scanned here)
    ('<row r="{r}"><c r="A{r}"><f t="array" ref="A{r}:B{r}">C{r}:D{r}</f><v>1</v></c><c r="B{r}"><v>2</v></c></row>',
     True),
    ('<row r="{r}"><c r="A{r}" cm="1"><f t="array" ref="A{r}:A{r}">C{r}</f><v>1</v></c></row>', False),
    # a data table, as a note
    ('<row r="{r}"><c r="A{r}"><f t="dataTable" ref="A{r}" dt2D="0" dtr="0" r1="B1"/><v>1</v></c></row>', True),
])
def test_the_child_gives_its_cells_only_when_they_are_what_this_process_reads(tmp_path, monkeypatch, tail, taken):
    """A short head, then ROWS rows of the tail's kind: the child (30%) scans only those."""
    head = _plain_rows(1, 20)
    head.append('<row r="1000"><c r="A1000"><f t="shared" ref="A1000:A9000" si="0">B1000+1</f><v>1</v></c></row>')
    master_at = 2000 + ROWS * 9 // 10  # in the child's chunks; the rows before it have plain formulas

    def master(r):
        if r < master_at:
            return f"<f>B{r}</f>"
        return f'<f t="shared" ref="A{r}:A9000" si="1">B{r}+1</f>' if r == master_at else '<f t="shared" si="1"/>'

    rows = head + [tail.format(r=r, master=master(r)) for r in range(2000, 2000 + ROWS)]
    metadata = (
        '<?xml version="1.0" encoding="UTF-8"?><metadata xmlns="http://schemas.openxmlformats.org/'
        'spreadsheetml/2006/main" xmlns:xda="http://schemas.microsoft.com/office/spreadsheetml/2017/'
        'dynamicarray"><metadataTypes count="1"><metadataType name="XLDAPR" minSupportedVersion="120000"/>'
        '</metadataTypes><futureMetadata name="XLDAPR" count="1"><bk><extLst><ext uri="x">'
        '<xda:dynamicArrayProperties fDynamic="1" fCollapsed="0"/></ext></extLst></bk></futureMetadata>'
        '<cellMetadata count="1"><bk><rc t="1" v="0"/></bk></cellMetadata></metadata>')
    path = _tail_case(tmp_path, "tail", rows, shared_strings="<si><t>s</t></si>")
    if "cm=" in tail:
        path = _with_metadata(tmp_path, path, metadata)
    inline = _whole(path, monkeypatch, 0)
    assert inline[0] != "error"
    seen = []
    assert _whole(path, monkeypatch, 0.3, seen) == inline
    assert seen and taken in (None, seen[0]) and seen[1:] == [False] * (len(seen) - 1)


def _with_metadata(tmp_path, path, metadata: str):
    """The workbook with a sheetMetadata part (dynamic arrays) related to it."""
    target = tmp_path / "with-metadata.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"</Relationships>", (
                    b'<Relationship Id="rIdM" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                    b'relationships/sheetMetadata" Target="metadata.xml"/></Relationships>'))
            out.writestr(info, data)
        out.writestr("xl/metadata.xml", metadata)
    return target


def test_a_child_that_fails_leaves_the_reading_here(tmp_path, monkeypatch):
    """A child that dies gives no cells and no verdict: this process checks and scans."""
    path = _tail_case(tmp_path, "plain", _plain_rows(1, ROWS))
    inline = _whole(path, monkeypatch, 0)

    def dies(*_args):
        os._exit(3)

    monkeypatch.setattr(reader, "_tail_cells", dies)
    seen = []
    assert _whole(path, monkeypatch, 0.4, seen) == inline
    assert seen and set(seen) == {False}
    broken = _tail_case(tmp_path, "broken", _rows(bad_xml_at=ROWS - 5))
    inline = _whole(broken, monkeypatch, 0)
    assert inline[0] == "error"
    monkeypatch.setattr(reader, "_tail_cells", dies)
    assert _whole(broken, monkeypatch, 0.4) == inline


def test_a_bad_cell_in_the_childs_chunks_is_reported_as_here(tmp_path, monkeypatch):
    for case in ({"bad_ref_at": ROWS - 5}, {"bad_ref_at": ROWS - 5, "bad_xml_at": ROWS - 3},
                 {"bad_ref_at": ROWS - 3, "bad_xml_at": ROWS - 5}):
        path = write_package(tmp_path / "bad.xlsx", [("sheet", _rows(**case))])
        inline = _whole(path, monkeypatch, 0)
        assert inline[0] == "error"
        assert _whole(path, monkeypatch, 0.3) == inline
