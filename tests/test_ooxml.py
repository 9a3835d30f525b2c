"""The OOXML validator accepts what XlsxWriter writes and catches a broken part."""

from __future__ import annotations

import shutil
import zipfile

import pytest
import xlsxwriter

from xlgen import ooxml
from xlgen.errors import XlgenError
from xlgen.ooxml import validate_ooxml, validator_path


def _missing_reason() -> str:
    if shutil.which("node") is None:
        return "node is not installed (the OOXML validator runs on Node >= 20.19)"
    return "the OOXML validator is not installed; run scripts/install-validator"


needs_validator = pytest.mark.skipif(validator_path() is None, reason=_missing_reason())


def write_workbook_with_charts(path) -> None:
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("data")
    sheet.write_row(0, 0, ["x", "y"])
    for row in range(1, 21):
        sheet.write_number(row, 0, row / 10)
        sheet.write_formula(row, 1, f"=2*A{row + 1}+LEARNING_RATE", None, 2 * row / 10 + 0.01)
    sheet.write_number("D1", 0.01)
    workbook.define_name("LEARNING_RATE", "=data!$D$1")
    workbook.define_name("AVERAGE_GRAD", "=_xlfn.LAMBDA(_xlpm.x,AVERAGE(_xlpm.x))")

    line = workbook.add_chart({"type": "line"})
    line.add_series({"categories": "=data!$A$2:$A$21", "values": "=data!$B$2:$B$21", "name": "loss"})
    sheet.insert_chart("F2", line)
    scatter = workbook.add_chart({"type": "scatter", "subtype": "straight_with_markers"})
    scatter.add_series({"categories": "=data!$A$2:$A$21", "values": "=data!$B$2:$B$21"})
    scatter.set_x_axis({"name": "x"})
    sheet.insert_chart("F20", scatter)
    workbook.close()


def rewrite_part(source, target, part: str, change) -> None:
    """Copy a zip, passing the bytes of one part through `change`."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for name in original.namelist():
            data = original.read(name)
            copy.writestr(name, change(data) if name == part else data)


@needs_validator
def test_xlsxwriter_workbook_with_charts_and_names_is_valid(tmp_path):
    path = tmp_path / "charts.xlsx"
    write_workbook_with_charts(path)
    assert validate_ooxml(path) == []


@needs_validator
def test_invalid_sheet_element_is_reported(tmp_path):
    valid = tmp_path / "valid.xlsx"
    write_workbook_with_charts(valid)
    broken = tmp_path / "broken.xlsx"
    rewrite_part(valid, broken, "xl/worksheets/sheet1.xml",
                 lambda xml: xml.replace(b"<sheetData>", b"<bogusElement/><sheetData>", 1))

    errors = validate_ooxml(broken)

    assert len(errors) == 1
    assert errors[0].startswith("/xl/worksheets/sheet1.xml /x:worksheet[1]: Sch_InvalidElementContent")
    assert "bogusElement" in errors[0]
    assert "\n" not in errors[0]


@needs_validator
def test_file_that_is_not_a_package_gives_one_package_error(tmp_path):
    path = tmp_path / "not-a-zip.xlsx"
    path.write_bytes(b"PK\x03\x04 but not a zip archive")
    assert validate_ooxml(path) == ["package: cannot be opened as a spreadsheet: File contains corrupted data."]


def test_missing_validator_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(ooxml, "validator_path", lambda: None)
    with pytest.raises(XlgenError, match="scripts/install-validator"):
        validate_ooxml(tmp_path / "any.xlsx")


@needs_validator
def test_package_level_error_is_reported_although_the_cli_cannot_print_it(tmp_path):
    valid = tmp_path / "valid.xlsx"
    write_workbook_with_charts(valid)
    no_content_types = tmp_path / "no-content-types.xlsx"
    with zipfile.ZipFile(valid) as original, zipfile.ZipFile(no_content_types, "w") as copy:
        for name in original.namelist():
            if name != "[Content_Types].xml":
                copy.writestr(name, original.read(name))

    errors = validate_ooxml(no_content_types)

    assert len(errors) == 1 and errors[0].startswith("package: invalid package structure")
