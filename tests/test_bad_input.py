"""Hostile and broken input: one line on stderr, exit code 2, never a traceback.

Every case goes through the command line (`xlgen verify FILE`, `xlgen build ...`) the
way a user meets it. The workbooks are made here from a small built file, by hand, so
each test says exactly what is wrong with its file. A few cases also run as a real
process, to prove the user sees nothing but that one line.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from xlgen.engine import reader

SMALL_TEMPLATE = """\
title = "small"
description = "data and basic sheets only, four points"
epochs = 1
learning_rate = 0.0001
derivative = "analytic"

[data]
intercept = 30
slope = 2
x = [14, 86, 28, 51]

[sheets.basic]
layout = "basic"
initial = { a = 1, b = 1 }
"""

SHEET = "xl/worksheets/sheet3.xml"  # the basic sheet (about is sheet1, data sheet2)
MiB = 1 << 20


@pytest.fixture(scope="module")
def workbook(tmp_path_factory) -> Path:
    """A small, correct workbook: data (4 points) and one epoch of the basic sheet."""
    from xlgen.build import build
    folder = tmp_path_factory.mktemp("bad-input")
    template = folder / "small.toml"
    template.write_text(SMALL_TEMPLATE)
    path = folder / "small.xlsx"
    build(str(template), path)
    code, out, err = run_cli("verify", path)
    assert code == 0, out + err  # the cases below break a file that verifies
    return path


def one_line_error(code: int, out: str, err: str) -> str:
    """The one stderr line of a refused input (asserting there is exactly that)."""
    assert code == 2, f"exit {code}, expected 2\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines[0].startswith("xlgen: error: ")
    return lines[0]


def verify_refuses(path: Path, *fragments: str) -> str:
    line = one_line_error(*run_cli("verify", path))
    for fragment in fragments:
        assert fragment in line, line
    return line


def copy_workbook(source: Path, target: Path, change=None, drop=(), add=()) -> Path:
    """Copy a workbook member by member: `change(name, bytes)` may rewrite a member,
    `drop` leaves members out, `add` appends (name, bytes) members."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            if info.filename in drop:
                continue
            data = original.read(info.filename)
            copy.writestr(info, change(info.filename, data) if change else data)
        for name, data in add:
            copy.writestr(name, data)
    return target


def edit(part: str, pattern: str, replacement: str):
    """A `change` for copy_workbook: one regex substitution in one member, which must match."""
    def change(name: str, data: bytes) -> bytes:
        if name != part:
            return data
        text, count = re.subn(pattern, lambda _m: replacement, data.decode("utf-8"), count=1)
        assert count == 1, f"{pattern!r} not found in {part}"
        return text.encode("utf-8")
    return change


def member_text(path: Path, part: str) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(part).decode("utf-8")


# --- files that are not workbooks ---------------------------------------------------

def test_file_that_does_not_exist(tmp_path):
    verify_refuses(tmp_path / "nowhere.xlsx", "nowhere.xlsx: no such file")


def test_directory(tmp_path):
    folder = tmp_path / "folder.xlsx"
    folder.mkdir()
    verify_refuses(folder, "is a directory, not a workbook")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.xlsx"
    path.write_bytes(b"")
    verify_refuses(path, "is empty (0 bytes)")


def test_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x,y\n14,58\n86,202\n")
    verify_refuses(path, "is not an .xlsx workbook (not a zip archive)")


def test_zip_that_is_not_a_workbook(tmp_path):
    path = tmp_path / "letter.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("word/document.xml", "<document/>")
    verify_refuses(path, "has no workbook part (xl/workbook.xml)")


def test_truncated_zip(workbook, tmp_path):
    path = tmp_path / "half.xlsx"
    data = workbook.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    verify_refuses(path, "is a truncated or corrupt zip archive")


def test_zip_with_a_corrupt_member(workbook, tmp_path):
    """The central directory is intact, the sheet's compressed bytes are not."""
    path = tmp_path / "corrupt.xlsx"
    data = bytearray(workbook.read_bytes())
    with zipfile.ZipFile(workbook) as archive:
        info = archive.getinfo(SHEET)
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    middle = start + info.compress_size // 2
    data[middle: middle + 64] = bytes(range(64))
    path.write_bytes(bytes(data))
    verify_refuses(path, f"{SHEET} is truncated or corrupt")


def test_encrypted_workbook(tmp_path):
    """Excel saves a password-protected workbook as an OLE compound file (CFB) holding
    the encrypted package; its first 8 bytes are the CFB signature."""
    header = bytes.fromhex("D0CF11E0A1B11AE1") + bytes(16)
    header += struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)  # version 3, 512-byte sectors
    path = tmp_path / "secret.xlsx"
    path.write_bytes(header + bytes(512 - len(header)) + bytes(1024))
    verify_refuses(path, "is encrypted or password-protected", "save it as an unprotected .xlsx")


# --- zip bombs ----------------------------------------------------------------------

def raw_deflate(data: bytes) -> bytes:
    """A self-contained, byte-aligned deflate stretch (fresh compressor, full flush): copies
    of it can follow each other in one stream, each inflating to `data` again."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


FINAL_EMPTY_BLOCK = zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def write_zip(path: Path, members: list) -> None:
    """A zip written by hand from (name, deflated bytes, crc, declared size) members, so a
    member can inflate to more than a GiB (or lie about its size) without either being
    written to disk."""
    body, directory = b"", b""
    for name, deflated, crc, size in members:
        encoded = name.encode()
        fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, crc, len(deflated), size)
        offset = len(body)
        body += struct.pack("<I", 0x04034B50) + fields + struct.pack("<HH", len(encoded), 0) + encoded + deflated
        directory += (struct.pack("<IH", 0x02014B50, 20) + fields
                      + struct.pack("<HHHHHII", len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(body), 0)
    path.write_bytes(body + directory + end)


def deflated_member(name: str, data: bytes):
    return name, raw_deflate(data) + FINAL_EMPTY_BLOCK, zlib.crc32(data), len(data)


def bomb_workbook(workbook: Path, path: Path, sheet_member) -> None:
    """`workbook` rewritten with `sheet_member` in place of the basic sheet."""
    with zipfile.ZipFile(workbook) as archive:
        members = [sheet_member if info.filename == SHEET else deflated_member(info.filename, archive.read(info))
                   for info in archive.infolist()]
    write_zip(path, members)


SHEET_START = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')


def test_zip_bomb_past_the_readers_cap(workbook, tmp_path):
    """A ~1 MB file whose sheet XML inflates past the reader's 1 GiB cap: refused from the
    sizes it declares, before anything is inflated."""
    spaces = b" " * MiB
    copies = reader.MAX_TOTAL_UNCOMPRESSED // MiB + 1
    crc = zlib.crc32(SHEET_START)
    for _ in range(copies):
        crc = zlib.crc32(spaces, crc)
    deflated = raw_deflate(SHEET_START) + raw_deflate(spaces) * copies + FINAL_EMPTY_BLOCK
    path = tmp_path / "bomb.xlsx"
    bomb_workbook(workbook, path, (SHEET, deflated, crc, len(SHEET_START) + copies * MiB))

    assert path.stat().st_size < 4 * MiB
    with zipfile.ZipFile(path) as archive:  # a genuine zip: its sheet inflates as declared
        assert archive.getinfo(SHEET).file_size > reader.MAX_TOTAL_UNCOMPRESSED
        with archive.open(SHEET) as stream:
            assert stream.read(len(SHEET_START) + 4 * MiB) == SHEET_START + b" " * (4 * MiB)

    started = time.perf_counter()
    line = verify_refuses(path, "would inflate to 1025 MiB (limit 1024 MiB): refusing a possible zip bomb")
    assert time.perf_counter() - started < 5, "the bomb was inflated, not refused"
    assert str(path) in line


def test_zip_bomb_by_compression_ratio(workbook, tmp_path):
    """Under the total cap, but a sheet that inflates 1000:1 is no spreadsheet."""
    payload = SHEET_START + b" " * (16 * MiB)
    path = tmp_path / "ratio-bomb.xlsx"
    bomb_workbook(workbook, path, deflated_member(SHEET, payload))
    verify_refuses(path, f"member {SHEET} compresses", ":1 (a possible zip bomb)")


def test_zip_bomb_that_lies_about_its_size(workbook, tmp_path):
    """Headers can lie: the sheet declares 4,000 bytes and inflates to 16 MiB. The reader
    counts what it inflates instead of trusting the header."""
    payload = SHEET_START + b" " * (16 * MiB)
    name, deflated, crc, _size = deflated_member(SHEET, payload)
    path = tmp_path / "lying-bomb.xlsx"
    bomb_workbook(workbook, path, (name, deflated, crc, 4000))
    verify_refuses(path, SHEET, "truncated or corrupt")


# --- XML that is dangerous or broken ------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""


def with_doctype(xml: bytes, entity_use: str) -> bytes:
    """The member's XML with the billion-laughs DTD in front and `entity_use` inside its
    root element."""
    text = re.sub(r"^<\?xml[^>]*\?>\s*", "", xml.decode("utf-8"))
    text = re.sub(r"^(<[^>]*[^/]>)", lambda m: m.group(1) + entity_use, text, count=1)
    return (BILLION_LAUGHS + text).encode("utf-8")


@pytest.mark.parametrize("part", [SHEET, "xl/sharedStrings.xml", "xl/workbook.xml",
                                  "xl/_rels/workbook.xml.rels", "_rels/.rels"])
def test_billion_laughs(workbook, tmp_path, part):
    """An entity-expansion bomb (a billion "lol"s, 3 GB) in any part the reader parses."""
    path = copy_workbook(workbook, tmp_path / "laughs.xlsx",
                         lambda name, data: with_doctype(data, "&lol9;") if name == part else data)
    assert "&lol9;" in member_text(path, part)
    started = time.perf_counter()
    verify_refuses(path, f"{part} contains a DTD or entity declaration; refusing it")
    assert time.perf_counter() - started < 5


def test_billion_laughs_inside_a_cell(workbook, tmp_path):
    """The expansion sits where a value would: in an inline string of the sheet."""
    path = copy_workbook(workbook, tmp_path / "laughs.xlsx", lambda name, data: (
        with_doctype(data, "") if name == SHEET else data))
    path = copy_workbook(path, tmp_path / "laughs-cell.xlsx", edit(
        SHEET, r'<c r="B1" s="\d+" t="s"><v>\d+</v></c>', '<c r="B1" t="inlineStr"><is><t>&lol9;</t></is></c>'))
    verify_refuses(path, f"{SHEET} contains a DTD or entity declaration; refusing it")


def test_external_entity(workbook, tmp_path):
    """XXE: an entity that would read a file of the machine running verify."""
    doctype = '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
    path = copy_workbook(workbook, tmp_path / "xxe.xlsx", lambda name, data: (
        (doctype + re.sub(r"^<\?xml[^>]*\?>\s*", "", data.decode())).replace(
            "<sheetData>", "<sheetData>&secret;", 1).encode() if name == SHEET else data))
    line = verify_refuses(path, f"{SHEET} contains a DTD or entity declaration; refusing it")
    assert "root:" not in line


def test_sheet_xml_that_is_not_well_formed(workbook, tmp_path):
    path = copy_workbook(workbook, tmp_path / "cut.xlsx", lambda name, data: (
        data[: len(data) // 2] if name == SHEET else data))
    verify_refuses(path, f"{SHEET} is not well-formed XML")


# --- macros ---------------------------------------------------------------------------

MACRO_CONTENT_TYPE = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"


def make_xlsm(source: Path, target: Path) -> Path:
    """`source` saved as Excel saves a macro-enabled workbook: a vbaProject.bin member, its
    relationship and content types. The "VBA project" is junk: were verify to open it,
    let alone run it, it would fail."""
    def change(name: str, data: bytes) -> bytes:
        text = data.decode("utf-8")
        if name == "[Content_Types].xml":
            text = text.replace("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                                MACRO_CONTENT_TYPE)
            text = text.replace("</Types>", '<Default Extension="bin" '
                                'ContentType="application/vnd.ms-office.vbaProject"/></Types>')
        elif name == "xl/_rels/workbook.xml.rels":
            text = text.replace("</Relationships>", '<Relationship Id="rId99" '
                                'Type="http://schemas.microsoft.com/office/2006/relationships/vbaProject" '
                                'Target="vbaProject.bin"/></Relationships>')
        else:
            return data
        return text.encode("utf-8")
    vba = bytes.fromhex("D0CF11E0A1B11AE1") + b"Sub Auto_Open(): Shell \"rm -rf ~\": End Sub" * 20
    return copy_workbook(source, target, change, add=[("xl/vbaProject.bin", vba)])


def test_xlsm_is_verified_and_its_macros_ignored(workbook, tmp_path):
    path = make_xlsm(workbook, tmp_path / "macros.xlsm")
    assert MACRO_CONTENT_TYPE in member_text(path, "[Content_Types].xml")

    code, out, err = run_cli("verify", path)
    assert code == 0, out + err
    assert err == ""
    assert "note: macros (vbaProject.bin) ignored" in out
    code, out, _ = run_cli("verify", path, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"]
    assert "macros (vbaProject.bin) ignored" in report["notes"]


def test_xlsm_with_a_wrong_cell_fails_on_its_content(workbook, tmp_path):
    from tests.workbook_files import read_formula, replace_formula
    wrong = tmp_path / "wrong.xlsx"
    replace_formula(workbook, wrong, "basic", "F5", read_formula(workbook, "basic", "F5") + "*1.5")
    path = make_xlsm(wrong, tmp_path / "wrong.xlsm")
    code, out, _ = run_cli("verify", path, "--json")
    report = json.loads(out)
    assert code == 1
    assert report["first_divergence"] == "basic!F5"
    assert "macros (vbaProject.bin) ignored" in report["notes"]


# --- workbooks with missing or wrong parts --------------------------------------------

def test_missing_sheet_part(workbook, tmp_path):
    path = copy_workbook(workbook, tmp_path / "no-sheet.xlsx", drop=(SHEET,))
    verify_refuses(path, f"sheet 'basic' has no part ({SHEET})")


def test_sheet_with_no_relationship(workbook, tmp_path):
    path = copy_workbook(workbook, tmp_path / "no-rel.xlsx", edit(
        "xl/_rels/workbook.xml.rels", r'<Relationship Id="rId3" [^>]*/>', ""))  # rId1 about, rId2 data
    verify_refuses(path, "sheet 'basic' has no part (no relationship)")


def test_defined_name_pointing_to_a_missing_sheet(workbook, tmp_path):
    path = copy_workbook(workbook, tmp_path / "name.xlsx", edit(
        "xl/workbook.xml", r"(?<=<definedName name=\"learning_rate\" localSheetId=\"2\">)basic!\$F\$1",
        "nosuch!$F$1"))
    verify_refuses(path, "learning_rate", "nosuch!F1", "no sheet 'nosuch'")


def test_data_sheet_missing_from_the_workbook(workbook, tmp_path):
    """The sheet list loses `data`, its names and the basic sheet's links stay behind."""
    path = copy_workbook(workbook, tmp_path / "no-data.xlsx", edit(
        "xl/workbook.xml", r'<sheet name="data" [^>]*/>', ""))
    verify_refuses(path, "no sheet 'data'")


def test_formula_reading_a_missing_sheet_is_a_wrong_cell(workbook, tmp_path):
    """A readable file whose formula points at a sheet it lacks: Excel shows #REF! there,
    and verify names that cell as wrong (exit 1), not as bad input."""
    from tests.workbook_files import replace_formula
    path = tmp_path / "ref.xlsx"
    replace_formula(workbook, path, "basic", "A4", "nosuch!B5")
    code, out, err = run_cli("verify", path, "--json")
    assert code == 1 and err == ""
    report = json.loads(out)
    assert report["first_divergence"] == "basic!A4"
    assert report["mismatches"][0]["actual"] == "#REF!"


def test_formula_using_an_undefined_name_is_a_wrong_cell(workbook, tmp_path):
    from tests.workbook_files import replace_formula
    path = tmp_path / "name.xlsx"
    replace_formula(workbook, path, "basic", "F4", "(B4-E4)^2*no_such_name")
    code, out, err = run_cli("verify", path, "--json")
    assert code == 1 and err == ""
    report = json.loads(out)
    assert report["first_divergence"] == "basic!F4"
    assert report["mismatches"][0]["actual"] == "#NAME?"


# --- formulas the engine cannot compute -----------------------------------------------

@pytest.mark.parametrize("function, formula", [
    ("WEBSERVICE", '_xlfn.WEBSERVICE("https://example.com/lr")'),
    ("FOOBAR", "FOOBAR(B4-E4)"),
])
def test_unsupported_function_names_the_cell_and_function(workbook, tmp_path, function, formula):
    from tests.workbook_files import replace_formula
    path = tmp_path / "unsupported.xlsx"
    replace_formula(workbook, path, "basic", "F4", formula)
    verify_refuses(path, "basic!F4", f"function {function} is not supported by xlgen's engine")


def test_circular_reference_names_the_cells(workbook, tmp_path):
    from tests.workbook_files import replace_formula
    path = tmp_path / "loop.xlsx"
    replace_formula(workbook, path, "basic", "E4", "F4+D4*A4")  # F4 = (B4-E4)^2
    line = verify_refuses(path, "circular reference: basic!")
    # the loop is named from wherever the search entered it (the about sheet links to basic)
    assert any(loop in line for loop in ("basic!E4 -> basic!F4 -> basic!E4", "basic!F4 -> basic!E4 -> basic!F4")), line


def test_cell_that_refers_to_itself(workbook, tmp_path):
    from tests.workbook_files import replace_formula
    path = tmp_path / "self.xlsx"
    replace_formula(workbook, path, "basic", "R4", "SQRT(SUM(F4:F7))+R4")
    verify_refuses(path, "circular reference: basic!R4")


# --- text where a number belongs ------------------------------------------------------

@pytest.mark.parametrize("part, cell, label", [
    (SHEET, "F1", "basic!F1 (learning_rate)"),
    (SHEET, "C2", "basic!C2 (initial a)"),
    ("xl/worksheets/sheet2.xml", "C2", "data!C2 (slope)"),
])
def test_text_where_a_number_belongs_names_the_cell(workbook, tmp_path, part, cell, label):
    path = copy_workbook(workbook, tmp_path / "text.xlsx", edit(
        part, rf'<c r="{cell}" s="(\d+)"><v>[^<]*</v></c>',
        f'<c r="{cell}" t="inlineStr"><is><t>fast</t></is></c>'))
    verify_refuses(path, f"{label} should hold a number, not 'fast'")


# --- the same, as the user sees it in a terminal --------------------------------------

def test_json_report_is_not_printed_for_bad_input(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x,y\n")
    code, out, err = run_cli("verify", path, "--json")
    one_line_error(code, out, err)
    assert out == ""


@pytest.mark.parametrize("make", ["not a zip", "encrypted", "missing"])
def test_a_real_process_prints_one_line(tmp_path, make):
    path = tmp_path / "input.xlsx"
    if make == "not a zip":
        path.write_text("x,y\n")
    elif make == "encrypted":
        path.write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + bytes(504))
    result = subprocess.run([sys.executable, "-m", "xlgen.cli", "verify", str(path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    one_line_error(result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""


# --- build: template errors are refused before anything is written --------------------

@pytest.fixture()
def small_template(tmp_path) -> Path:
    path = tmp_path / "templates" / "small.toml"
    path.parent.mkdir()
    path.write_text(SMALL_TEMPLATE)
    return path


def template_with(small_template: Path, old: str, new: str) -> Path:
    text = small_template.read_text()
    assert old in text
    small_template.write_text(text.replace(old, new, 1))
    return small_template


BUILD_CASES = [
    # (--set overrides or a template edit (old, new), words the message must hold)
    (["bogus=1"], "--set bogus: unknown key 'bogus'"),
    (["sheets.basic.speed=3"], "unknown key 'sheets.basic.speed'"),
    (("epochs = 1", "epochs = 1\ncolour = \"red\""), "unknown key 'colour' at the top of the template"),
    (("layout = \"basic\"", "layout = \"basic\"\nspeed = 3"), "unknown key sheets.basic.speed for layout 'basic'"),
    (["learning_rate=nan"], "learning_rate must be a finite number, got nan"),
    (("learning_rate = 0.0001", "learning_rate = nan"), "learning_rate must be a finite number, got nan"),
    (["learning_rate=inf"], "learning_rate must be a finite number, got inf"),
    (["learning_rate=-0.001"], "learning_rate must be greater than 0, got -0.001"),
    (["learning_rate=0"], "learning_rate must be greater than 0, got 0"),
    (["sheets.basic.learning_rate=0"], "sheets.basic.learning_rate must be greater than 0, got 0"),
    (["learning_rate=fast"], "learning_rate must be a number, got 'fast'"),
    (["epochs=0"], "epochs must be a whole number of at least 1, got 0"),
    (["epochs=-3"], "epochs must be a whole number of at least 1, got -3"),
    (["epochs=2.5"], "epochs must be a whole number of at least 1, got 2.5"),
    # 3 header rows + 4 points x 262,144 epochs = 1,048,579 rows
    (["epochs=262144"], "sheets.basic: 1,048,579 rows would pass Excel's limit of 1,048,576; use fewer epochs"),
    (["epochs=1000000000"], "rows would pass Excel's limit of 1,048,576"),
    (("x = [14, 86, 28, 51]", "x = []"), "data.x must be a non-empty list of numbers"),
    (("slope = 2", "slope = \"steep\""), "data.slope must be a number, got 'steep'"),
    (("epochs = 1", "epochs = [1"), "not valid TOML"),
]


@pytest.mark.parametrize("change, message", BUILD_CASES, ids=[str(case[0]) for case in BUILD_CASES])
def test_build_refuses_bad_templates_before_writing(small_template, tmp_path, change, message):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    overrides = []
    if isinstance(change, tuple):
        template_with(small_template, *change)
    else:
        for item in change:
            overrides += ["--set", item]
    started = time.perf_counter()
    code, out, err = run_cli("build", small_template, "-o", out_dir / "never.xlsx", *overrides, "--quiet")
    line = one_line_error(code, out, err)
    assert message in line
    assert list(out_dir.iterdir()) == [], "a file (or temporary file) was written"
    assert time.perf_counter() - started < 10, "refused only after building"


def test_build_refuses_graddesc_with_more_rows_than_excel_has(tmp_path):
    """The shipped template too: 29 points x 40,000 epochs is past 1,048,576 rows."""
    code, out, err = run_cli("build", "graddesc", "-o", tmp_path / "never.xlsx", "--set", "epochs=40000")
    line = one_line_error(code, out, err)
    assert "rows would pass Excel's limit of 1,048,576" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["nosuchtemplate"], "unknown template 'nosuchtemplate'"),
    (["missing.toml"], "template file missing.toml does not exist"),
    (["graddesc", "--set", "epochs"], "--set takes key=value, got 'epochs'"),
])
def test_build_refuses_a_template_it_cannot_find(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(*run_cli("build", *args, "-o", tmp_path / "never.xlsx"))
    assert message in line
    assert list(tmp_path.iterdir()) == []


def test_build_into_a_missing_folder_or_onto_a_folder(tmp_path, small_template):
    line = one_line_error(*run_cli("build", small_template, "-o", tmp_path / "nowhere" / "x.xlsx", "--quiet"))
    assert "folder" in line and "nowhere does not exist" in line
    folder = tmp_path / "taken.xlsx"
    folder.mkdir()
    line = one_line_error(*run_cli("build", small_template, "-o", folder, "--quiet", "--force"))
    assert "is a directory" in line
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["verify"], "Missing argument 'FILE'. (see `main verify --help`)"),
    (["verify", "x.xlsx", "--engine", "excel"], "Invalid value for '--engine': 'excel' is not one of"),
    (["verify", "x.xlsx", "--colour"], "No such option '--colour'."),
    (["--bogus"], "No such option '--bogus'."),
    (["frobnicate"], "No such command 'frobnicate'."),
])
def test_a_wrong_command_line_is_one_line_too(args, message):
    line = one_line_error(*run_cli(*args))
    assert message in line
