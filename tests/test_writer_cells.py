"""The writer renders the common cells' XML itself (xlgen/writer.py _write_cells); the file
must be the one XlsxWriter's own calls give, byte for byte: the same <c> elements, rows
joined with the cells XlsxWriter keeps (merges, links, booleans), formats numbered in the
order the file first uses them, and charts' cached values read from rendered cells.

The rebuild tests check the seven examples; this plan puts the cases they may not cover
side by side: a format first used by a merge's blank before a rendered cell's new one, a
note merged down over rows that hold other cells, text and formulas to escape, errors,
booleans and a link."""

from __future__ import annotations

import zipfile

import pytest

from xlgen import writer
from xlgen.engine import calculate
from xlgen.formula import Ref, Range, Text, call
from xlgen.sheets.plan import Chart, Series, WorkbookPlan


def _by_xlsxwriter(worksheet, sheet_plan, formulas, values, look, formats):
    """Every cell through XlsxWriter's own calls (formats numbered as it writes the file)."""
    chosen = {}
    for cell in sorted(sheet_plan.cells):
        entry = sheet_plan.cells[cell]
        key = (entry.style, look.formats.get(cell))
        if key not in chosen:
            chosen[key] = formats.cache[key] if key in formats.cache else formats.get(*key)
        row, col = cell
        content = entry.content
        if cell not in look.merges and hasattr(content, "text"):
            value = values[(sheet_plan.name, row, col)]
            worksheet.write_formula(row - 1, col - 1, formulas[cell], chosen[key],
                                    value if type(value) is float else writer.cached_value(value))
        else:
            writer._write_by_xlsxwriter(worksheet, sheet_plan, cell, content, chosen[key], look.merges)


def _plan() -> WorkbookPlan:
    plan = WorkbookPlan("Cells & <tags>", "every kind of cell")
    data = plan.add_sheet("data")
    for col, text in enumerate(["a & b", "<x>", "plain", "count", "weight", "ratio"], start=1):
        data.put(1, col, text, "header")
    data.put(2, 1, 1.5, "number")                 # a builder's merge over a numeric cell:
    data.merges.append((2, 1, 3))                 # its blanks take a format no cell used yet
    data.put(2, 4, 7, "count")                    # then a rendered cell's new format
    data.put(3, 1, "A note long enough to be wrapped and merged over the empty cells to its right and "
                   "down over the rows below, which hold cells of their own further right. " * 3, "note")
    for row in range(4, 9):
        data.put(row, 9, row * 0.125, "weight")
        data.put(row, 10, Ref(row, 9) * 3 - 1, "number")
        data.put(row, 11, Ref(row, 9).lt(0.7), "general")            # a boolean, and "<" to escape
        data.put(row, 12, Ref(row, 9) / (Ref(row, 9) - 0.5), "number")   # #DIV/0! in row 4
        data.put(row, 13, call("CONCAT", Text("<"), Ref(row, 9), Text("&>")))
        data.put(row, 14, Ref(row, 20) + 0)                          # an empty cell: 0
        data.put(row, 15, f"label {row} & more")
        data.put(row, 16, row % 2 == 0)
    data.put(10, 1, "go to other", "link")
    data.links[(10, 1)] = "other"
    data.put(10, 2, 12345678901234567.0, "number")     # 17 significant digits
    data.put(10, 3, -0.0, "number")
    data.charts.append(Chart("line", "Rendered and kept cells", [
        Series("doubled", Range(Ref(4, 10, "data"), Ref(8, 10, "data")), Range(Ref(4, 9, "data"), Ref(8, 9, "data"))),
        Series("labels", Range(Ref(4, 15, "data"), Ref(8, 15, "data")))], anchor=(12, 2)))
    other = plan.add_sheet("other")
    other.put(1, 1, Ref(4, 10, "data") * 2, "epoch_start")          # a style first used here
    other.put(1, 2, "text", "banner")
    other.put(2, 1, 3.25)
    return plan


def _write(plan, path):
    book = plan.to_book()
    writer.write_workbook(plan, book, calculate(book).values, path)
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_rendered_cells_give_xlsxwriters_bytes(tmp_path, monkeypatch):
    rendered = _write(_plan(), tmp_path / "rendered.xlsx")
    monkeypatch.setattr(writer, "_write_cells", _by_xlsxwriter)
    reference = _write(_plan(), tmp_path / "reference.xlsx")
    assert rendered.keys() == reference.keys()
    for name in reference:
        assert rendered[name] == reference[name], name
    sheet = rendered["xl/worksheets/sheet1.xml"].decode()
    assert "<f>I4&lt;0.7</f><v>1</v>" in sheet.replace(' t="b"', "")    # the boolean formula
    assert 't="e"><f>I4/(I4-0.5)</f><v>#DIV/0!</v>' in sheet
    assert "<mergeCell ref=\"A2:C2\"/>" in sheet
    chart = rendered["xl/charts/chart1.xml"].decode()
    assert ('<c:f>data!I4:I8</c:f><c:numCache><c:formatCode>General</c:formatCode><c:ptCount val="5"/>'
            '<c:pt idx="0"><c:v>0.5</c:v></c:pt><c:pt idx="1"><c:v>0.625</c:v>') in chart      # constants
    assert ('<c:f>data!J4:J8</c:f><c:numCache><c:formatCode>General</c:formatCode><c:ptCount val="5"/>'
            '<c:pt idx="0"><c:v>0.5</c:v></c:pt><c:pt idx="1"><c:v>0.875</c:v>') in chart      # formulas
    # a banner that fits its own cell keeps its text (XlsxWriter drops a one-cell merge)
    assert "<t>text</t>" in rendered["xl/sharedStrings.xml"].decode()


@pytest.mark.parametrize("template", ["cross-entropy", "convolution"])
def test_examples_give_xlsxwriters_bytes(tmp_path, monkeypatch, template):
    from xlgen.sheets import plan_workbook
    from xlgen.templates import load_template
    rendered = _write(plan_workbook(load_template(template)), tmp_path / "rendered.xlsx")
    monkeypatch.setattr(writer, "_write_cells", _by_xlsxwriter)
    reference = _write(plan_workbook(load_template(template)), tmp_path / "reference.xlsx")
    assert rendered == reference
