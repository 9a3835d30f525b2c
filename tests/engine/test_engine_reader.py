"""read_xlsx: what it takes out of real and hand-written packages, and what it refuses."""

import struct
import zipfile
from pathlib import Path

import pytest
from engine_cases import write_package

from xlgen.engine import ExcelError, calculate, read_xlsx
from xlgen.engine import reader as reader_module
from xlgen.engine.book import Sheet
from xlgen.errors import BadWorkbook

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT.parent / "shared" / "fixtures" / "graddesc-course.xlsx"


@pytest.fixture(scope="module")
def course():
    if not COURSE.exists():
        pytest.skip("course fixture not present")
    return read_xlsx(COURSE)


def test_course_sheets_names_and_shared_formulas(course):
    assert [s.name for s in course.sheets] == [
        "Sheet1", "data", "basic", "momentum", "rmsprop", "adam", "adam_ann"]
    adam_ann = course.sheet("adam_ann")
    # <f t="shared" ref="L4:M19" si="2">: shifted down and across
    assert adam_ann.formulas[(4, 12)] == "L3*$L$1+$M$1*F4^2"
    assert adam_ann.formulas[(5, 13)] == "M4*$L$1+$M$1*G5^2"
    assert adam_ann.formulas[(19, 13)] == "M18*$L$1+$M$1*G19^2"
    assert course.sheet("data").formulas[(6, 2)] == "RANDBETWEEN(1,100)"
    assert course.sheet("data").cached[(6, 2)] == 42.0
    assert course.names[("momentum", "GRADTARGET")] == "momentum!#REF!"
    assert course.names[("adam_ann", "AVG_GRAD2")] == "adam_ann!$N$33"
    assert ("basic", "CONST") in course.names and ("adam", "CONST") in course.names
    assert course.sheet("Sheet1").constants[(1, 1)].startswith("What is this spreadsheet")
    assert course.notes == []


def test_course_recomputes_to_its_cached_values(course):
    calc = calculate(course)
    assert len(calc.values) == course.formula_count() == 1623
    assert len(calc.volatile) == 29  # RANDBETWEEN in data!B5:B33
    compared = 0
    for sheet in course.sheets:
        for cell, cached in sheet.cached.items():
            value = calc.values[(sheet.name, *cell)]
            if isinstance(cached, float):
                assert value == pytest.approx(cached, rel=1e-12, abs=1e-12), (sheet.name, cell)
            else:
                assert value == cached
            compared += 1
    assert compared == 1623
    # =avg_grad2/prev_grad2 with sheet-scoped names
    assert calc.values[("adam_ann", 34, 14)] == pytest.approx(
        calc.values[("adam_ann", 33, 14)] / course.sheet("adam_ann").constants[(3, 14)])


SHEET_XML = (
    '<row r="1"><c r="A1"><v>1.5</v></c><c r="B1" t="s"><v>0</v></c><c r="C1" t="s"><v>1</v></c>'
    '<c r="D1" t="b"><v>1</v></c><c r="E1" t="e"><v>#N/A</v></c>'
    '<c r="F1" t="inlineStr"><is><r><t>in</t></r><r><t xml:space="preserve">line </t></r></is></c>'
    '<c r="G1" s="3"/><c r="H1" t="str"><f>"a"&amp;"b"</f><v>ab</v></c></row>'
    # a row and cells with no r attribute: positions follow the previous ones
    '<row><c><v>10</v></c><c t="s"><v>0</v></c><c s="1"/><c><f>A2*2</f><v>20</v></c></row>'
    # shared formula spanning rows and columns, followers without text
    '<row r="4"><c r="A4"><v>1</v></c><c r="B4"><f t="shared" ref="B4:C6" si="0">A4+$A$4*2</f>'
    '<v>3</v></c><c r="C4"><f t="shared" si="0"/><v>9</v></c></row>'
    '<row r="5"><c r="A5"><v>2</v></c><c r="B5"><f t="shared" si="0"/><v>4</v></c>'
    '<c r="C5"><f t="shared" si="0"/><v>6</v></c></row>'
    '<row r="6" spans="1:3"><c r="A6" s="2"><v>3</v></c><c r="B6" s="2"><f t="shared" si="0"/><v>5</v></c>'
    '<c r="C6" s="2"><f t="shared" si="0"/><v>7</v></c></row>'
    # an array formula (its other cells hold values only); a formula with an empty <v/>
    '<row r="8"><c r="A8"><f t="array" ref="A8:A9">A4:A5*10</f><v>10</v></c>'
    '<c r="B8"><f>A8&lt;5</f><v/></c><c r="C8" t="str"><f>IF(A8&gt;5,"&lt;big&gt;","")</f><v>&lt;big&gt;</v></c></row>'
    '<row r="9"><c r="A9"><v>20</v></c></row>'
)
SHARED_STRINGS = ('<si><t>plain</t></si>'
                  '<si><r><t>rich </t></r><r><rPr><b/></rPr><t>text</t></r>'
                  '<rPh sb="0" eb="1"><t>phonetic</t></rPh></si>')


def check_hand_written(book):
    sheet = book.sheet("hand")
    c = sheet.constants
    assert c[(1, 1)] == 1.5 and c[(1, 2)] == "plain" and c[(1, 3)] == "rich text"
    assert c[(1, 4)] is True and c[(1, 5)] == ExcelError("#N/A") and c[(1, 6)] == "inline "
    assert (1, 7) not in c
    assert sheet.formulas[(1, 8)] == '"a"&"b"' and sheet.cached[(1, 8)] == "ab"
    assert c[(2, 1)] == 10.0 and c[(2, 2)] == "plain" and sheet.formulas[(2, 4)] == "A2*2"
    assert sheet.formulas[(4, 2)] == "A4+$A$4*2"
    assert sheet.formulas[(4, 3)] == "B4+$A$4*2"
    assert sheet.formulas[(6, 3)] == "B6+$A$4*2"
    assert sheet.array_refs == {(8, 1): "A8:A9"} and sheet.formulas[(8, 1)] == "A4:A5*10"
    # the array's other cell is the formula's too: its saved value is cached, not a constant
    assert (9, 1) not in c and sheet.formulas[(9, 1)] == "A4:A5*10" and sheet.cached[(9, 1)] == 20.0
    assert sheet.formulas[(8, 2)] == "A8<5" and (8, 2) not in sheet.cached
    assert sheet.formulas[(8, 3)] == 'IF(A8>5,"<big>","")' and sheet.cached[(8, 3)] == "<big>"
    values = calculate(book).values
    assert values[("hand", 6, 3)] == 7.0  # B6 + 2 = (3 + 2) + 2
    assert values[("hand", 8, 1)] == 10.0 and values[("hand", 9, 1)] == 20.0
    assert values[("hand", 8, 3)] == "<big>"


@pytest.mark.parametrize("prefix, absolute", [("", False), ("x", True)])
def test_hand_written_package(tmp_path, prefix, absolute):
    path = write_package(tmp_path / "hand.xlsx", [("hand", SHEET_XML)], shared_strings=SHARED_STRINGS,
                         prefix=prefix, absolute_targets=absolute)
    check_hand_written(read_xlsx(path))


def test_prefixed_cells(tmp_path):
    """Every SpreadsheetML element written <x:c>, <x:v>, ... (the scanner's slow path)."""
    body = SHEET_XML.replace("<", "<x:").replace("<x:/", "</x:")
    path = write_package(tmp_path / "p.xlsx", [("hand", body)], shared_strings=SHARED_STRINGS, prefix="x")
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml").decode()
    assert "<x:c " in xml and "<c " not in xml
    check_hand_written(read_xlsx(path))


def test_fast_scanner_agrees_with_plain_expat(tmp_path):
    """The regex scanner and a full expat parse give the same sheet."""
    paths = [write_package(tmp_path / "hand.xlsx", [("hand", SHEET_XML)], shared_strings=SHARED_STRINGS)]
    if COURSE.exists():
        paths.append(COURSE)
    for path in paths:
        fast = read_xlsx(path)
        pkg = reader_module._Package(str(path))
        strings = (reader_module._read_shared_strings(pkg, "xl/sharedStrings.xml")
                   if pkg.has("xl/sharedStrings.xml") else [])
        rels = reader_module._read_rels(pkg, "xl/workbook.xml")
        sheets, _ = reader_module._read_workbook(pkg, "xl/workbook.xml")
        for (name, rid), sheet in zip(sheets, fast.sheets):
            slow = Sheet(name)
            rd = reader_module._SheetReader(slow, strings, str(path))
            pkg.parse(rels[rid][1], rd.start, rd.end, rd.chars)
            if slow.array_refs:
                reader_module._add_array_members(slow, str(path))
            assert slow.constants == sheet.constants, name
            assert slow.formulas == sheet.formulas, name
            assert slow.cached == sheet.cached, name
            assert slow.array_refs == sheet.array_refs, name


def _slow_read(path):
    """Each sheet read by expat alone, without the regex scanner."""
    pkg = reader_module._Package(str(path))
    strings = (reader_module._read_shared_strings(pkg, "xl/sharedStrings.xml")
               if pkg.has("xl/sharedStrings.xml") else [])
    rels = reader_module._read_rels(pkg, "xl/workbook.xml")
    sheets, _ = reader_module._read_workbook(pkg, "xl/workbook.xml")
    out = []
    for name, rid in sheets:
        sheet = Sheet(name)
        rd = reader_module._SheetReader(sheet, strings, str(path))
        try:
            pkg.parse(rels[rid][1], rd.start, rd.end, rd.chars)
        except BadWorkbook as exc:
            return str(exc)
        out.append(sheet)
    return out


def _cell_forms():
    """Cells in the forms the scanner reads on its short path and beside them (entities,
    t=, shared strings, empty styled cells, odd numbers), at increasing columns."""
    from hypothesis import strategies as st
    # (not ' ' alone: the scanner refuses it, where expat's reading takes it as no value)
    saved = st.sampled_from(["1", "2.5", "-3e5", "14.0", "0.1", "1&#46;5", " 7", "x"])
    number = st.one_of(saved, st.sampled_from(["inf", "-1e309", "nan"]))
    formula = st.sampled_from(["A1+1", "IF(A1&lt;2,1,2)", "&quot;a&quot;&amp;B1", "SUM(A1:A3)*2", "1"])
    style = st.sampled_from(["", ' s="1"', ' s="12"'])
    return st.one_of(
        st.tuples(st.just("formula"), style, formula, number),
        st.tuples(st.just("number"), style, st.just(""), number),
        st.tuples(st.just("string"), style, st.just(""), st.sampled_from(["0", "1", "9", "x"])),
        st.tuples(st.just("typed"), st.sampled_from(["str", "b", "e", "n"]), formula,
                  st.sampled_from(["1", "0", "#DIV/0!", "x", "2.5"])),
        st.tuples(st.just("empty"), style, st.just(""), st.just("")))


def _cell_xml(ref, kind, style, formula, value):
    if kind == "formula":
        return f'<c r="{ref}"{style}><f>{formula}</f><v>{value}</v></c>'
    if kind == "number":
        return f'<c r="{ref}"{style}><v>{value}</v></c>'
    if kind == "string":
        return f'<c r="{ref}"{style} t="s"><v>{value}</v></c>'
    if kind == "typed":
        return f'<c r="{ref}" t="{style}"><f>{formula}</f><v>{value}</v></c>'
    return f'<c r="{ref}"{style}/>'


def test_short_path_agrees_with_plain_expat(tmp_path):
    """Whatever mix of cell forms a row holds, the scanner (its short path for numbers and
    formulas with numbers, its general path for the rest) reads what expat alone reads,
    and refuses what it refuses, with the same message."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.lists(_cell_forms(), max_size=6), min_size=1, max_size=5))
    def check(rows):
        xml = "".join(f'<row r="{r}">' + "".join(_cell_xml(f"{chr(65 + c)}{r}", *cell) for c, cell in enumerate(cells))
                      + "</row>" for r, cells in enumerate(rows, 1))
        path = write_package(tmp_path / "mix.xlsx", [("mix", xml)], shared_strings="<si><t>a</t></si>" * 3)
        slow = _slow_read(path)
        try:
            fast = read_xlsx(path).sheets
        except BadWorkbook as exc:
            assert str(exc) == slow
            return
        assert not isinstance(slow, str), slow
        for quick, plain in zip(fast, slow):
            for part in ("constants", "formulas", "cached"):
                got, want = getattr(quick, part), getattr(plain, part)
                assert list(got.items()) == list(want.items()), part
                assert [type(v) for v in got.values()] == [type(v) for v in want.values()], part

    check()


def test_unescape_is_html_unescape():
    """The reader's entity decoding (str.replace for XML's five entities) gives exactly
    html.unescape's text, whatever the mix of entities, numeric references, entities
    without their ;, doubled or stray &."""
    import html

    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from(["&", ";", "#", "x", "3", "c", "C", "<", " ", "\n", "l", "t", "a", "p",
                              "lt", "gt", "amp", "quot", "apos", "&lt;", "&gt;", "&amp;", "&quot;",
                              "&apos;", "&#60;", "&#x3c;", "&#X3C;", "&lt", "&amp", "&LT;", "&nbsp;"])

    @settings(max_examples=1500, deadline=None)
    @given(st.lists(pieces, max_size=14).map("".join) | st.text(max_size=20))
    def check(text):
        assert reader_module.unescape(text) == html.unescape(text)

    check()


def test_sheet_data_end_is_the_regex_search():
    """The end of <sheetData>, found by the word's occurrences, is the regex's first match
    (prefixes, self-closing tags, the word in text or attributes, stray <)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from(["<", "</", "sheetData", "x:", "/>", ">", " ", "\n", "a", "<<", "<sheetData",
                              "</sheetData>", "<x:sheetData/>", "sheetData ", "</x:sheetData\n>", 'b=">"'])

    @settings(max_examples=1500, deadline=None)
    @given(st.lists(pieces, max_size=12).map("".join))
    def check(text):
        found, searched = reader_module._sheet_data_end(text), reader_module._SHEET_DATA_END_RE.search(text)
        assert (found and (found.span(), found.group())) == (searched and (searched.span(), searched.group()))

    check()


def test_sheet_order_comes_from_workbook_xml(tmp_path):
    path = write_package(tmp_path / "o.xlsx", [("zeta", '<row r="1"><c r="A1"><v>1</v></c></row>'),
                                              ("alpha", '<row r="1"><c r="A1"><v>2</v></c></row>')])
    book = read_xlsx(path)
    assert [s.name for s in book.sheets] == ["zeta", "alpha"]
    assert book.sheet("alpha").constants[(1, 1)] == 2.0


def test_defined_names_scopes_and_comments(tmp_path):
    names = ('<definedName name="lr" comment="learning rate">s1!$A$1</definedName>'
             '<definedName name="lr" localSheetId="1">s2!$A$1</definedName>'
             '<definedName name="gone" localSheetId="0">s1!#REF!</definedName>'
             '<definedName name="Avg_Grad">_xlfn.LAMBDA(_xlpm.x,_xlpm.x*2)</definedName>')
    path = write_package(tmp_path / "n.xlsx", [("s1", '<row r="1"><c r="A1"><v>1</v></c></row>'),
                                              ("s2", '<row r="1"><c r="A1"><v>2</v></c></row>')],
                         defined_names=names)
    book = read_xlsx(path)
    assert book.names[(None, "LR")] == "s1!$A$1"
    assert book.names[("s2", "LR")] == "s2!$A$1"
    assert book.names[("s1", "GONE")] == "s1!#REF!"
    assert book.names[(None, "AVG_GRAD")] == "_xlfn.LAMBDA(_xlpm.x,_xlpm.x*2)"
    assert book.name_comments == {(None, "LR"): "learning rate"}


def test_xlsm_macros_are_ignored_and_noted(tmp_path):
    path = write_package(tmp_path / "m.xlsm", [("s", '<row r="1"><c r="A1"><f>1+1</f><v>2</v></c></row>')],
                         extra_members={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0 not run"})
    book = read_xlsx(path)
    assert "macros (vbaProject.bin) ignored" in book.notes
    assert calculate(book).values[("s", 1, 1)] == 2.0


def test_openpyxl_files_without_cached_values(tmp_path):
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "s"
    ws["A1"] = 3
    ws["A2"] = "=A1*2"
    ws["A3"] = "text"
    ws["A4"] = True
    wb.save(tmp_path / "o.xlsx")
    book = read_xlsx(tmp_path / "o.xlsx")
    sheet = book.sheet("s")
    assert sheet.formulas == {(2, 1): "A1*2"} and sheet.cached == {}
    assert sheet.constants == {(1, 1): 3.0, (3, 1): "text", (4, 1): True}
    assert calculate(book).values[("s", 2, 1)] == 6.0


# --- hostile and broken inputs: always one line of BadWorkbook ------------------------------
def refuses(path, *words):
    with pytest.raises(BadWorkbook) as info:
        read_xlsx(path)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def test_missing_path_and_directory(tmp_path):
    refuses(tmp_path / "nope.xlsx", "no such file")
    refuses(tmp_path, "directory")


def test_empty_and_not_a_zip(tmp_path):
    (tmp_path / "empty.xlsx").write_bytes(b"")
    refuses(tmp_path / "empty.xlsx", "empty")
    (tmp_path / "text.xlsx").write_text("name,value\na,1\n")
    refuses(tmp_path / "text.xlsx", "not a zip")


def test_encrypted_workbook(tmp_path):
    (tmp_path / "secret.xlsx").write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 4096)
    refuses(tmp_path / "secret.xlsx", "encrypted or password-protected")


def test_truncated_zip(tmp_path):
    good = write_package(tmp_path / "good.xlsx", [("s", '<row r="1"><c r="A1"><v>1</v></c></row>' * 50)])
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 40):
        (tmp_path / "cut.xlsx").write_bytes(data[:cut])
        refuses(tmp_path / "cut.xlsx", "cut.xlsx")


def test_zip_bomb_by_ratio(tmp_path):
    sheet = '<row r="1"><c r="A1"><v>1</v></c></row>' + " " * (8 << 20)
    path = write_package(tmp_path / "bomb.xlsx", [("s", sheet)])
    refuses(path, "zip bomb")


def _patch_sizes(path, member, new_size):
    """Rewrite the uncompressed size a zip records for one member (local and central headers)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    pos = 0
    while (pos := data.find(b"PK\x03\x04", pos)) >= 0:
        n, m = struct.unpack_from("<HH", data, pos + 26)
        if data[pos + 30:pos + 30 + n] == name:
            struct.pack_into("<I", data, pos + 22, new_size)
        pos += 4
    pos = 0
    while (pos := data.find(b"PK\x01\x02", pos)) >= 0:
        n = struct.unpack_from("<H", data, pos + 28)[0]
        if data[pos + 46:pos + 46 + n] == name:
            struct.pack_into("<I", data, pos + 24, new_size)
        pos += 4
    path.write_bytes(bytes(data))


def test_zip_bomb_by_declared_size(tmp_path):
    path = write_package(tmp_path / "big.xlsx", [("s", '<row r="1"><c r="A1"><v>1</v></c></row>')])
    _patch_sizes(path, "xl/worksheets/sheet1.xml", 0xFFFFFFF0)
    refuses(path, "zip bomb")


def test_zip_member_that_inflates_past_its_header(tmp_path):
    path = write_package(tmp_path / "liar.xlsx", [("s", '<row r="1"><c r="A1"><v>1</v></c></row>' * 200)])
    _patch_sizes(path, "xl/worksheets/sheet1.xml", 100)
    refuses(path, "liar.xlsx")


@pytest.mark.parametrize("member", ["sheet", "workbook", "strings"])
def test_dtd_and_entities_are_refused(tmp_path, member):
    bomb = ('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>')
    path = write_package(tmp_path / "dtd.xlsx", [("s", '<row r="1"><c r="A1" t="s"><v>0</v></c></row>')],
                         shared_strings="<si><t>x</t></si>")
    part = {"sheet": "xl/worksheets/sheet1.xml", "workbook": "xl/workbook.xml",
            "strings": "xl/sharedStrings.xml"}[member]
    with zipfile.ZipFile(path) as archive:
        members = {i.filename: archive.read(i.filename) for i in archive.infolist()}
    text = members[part].decode()
    head, _, rest = text.partition("\n")
    members[part] = (head + "\n" + bomb + rest.replace("<t>x</t>", "<t>&lol2;</t>")).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    refuses(path, "DTD or entity")


def test_not_well_formed_sheet(tmp_path):
    path = write_package(tmp_path / "bad.xlsx", [("s", '<row r="1"><c r="A1"><v>1</v></row>')])
    refuses(path, "not well-formed")


def test_missing_workbook_or_sheet_part(tmp_path):
    sheets = [("s", '<row r="1"><c r="A1"><v>1</v></c></row>')]
    refuses(write_package(tmp_path / "nowb.xlsx", sheets, skip=("xl/workbook.xml",)), "workbook")
    refuses(write_package(tmp_path / "nosheet.xlsx", sheets, skip=("xl/worksheets/sheet1.xml",)),
            "sheet 's'")


def test_zip_that_is_not_a_workbook(tmp_path):
    with zipfile.ZipFile(tmp_path / "docs.xlsx", "w") as archive:
        archive.writestr("readme.txt", "hello")
    refuses(tmp_path / "docs.xlsx", "workbook")
