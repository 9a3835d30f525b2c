"""How the examples look, checked without rendering (tests/test_render.py renders):
number formats fitted to magnitudes, widths that fit the formatted values, charts whose
series each have their own colour, page breaks that cut no chart, LAMBDA sheets linked
to their plain twins."""

from __future__ import annotations

import re
import zipfile

import openpyxl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from xlgen import look
from xlgen.engine import calculate
from xlgen.engine.book import ExcelError
from xlgen.formula import Ref, Range
from xlgen.sheets import plan_workbook
from xlgen.sheets.plan import Chart, Series, WorkbookPlan
from xlgen.templates import load_template
from xlgen.writer import STYLES

WORKBOOKS = sorted((ROOT / "workbooks").glob("*.xlsx"))
TEMPLATES = ["graddesc", "two-neuron", "average-grad"]


@pytest.fixture(scope="module", params=TEMPLATES)
def planned(request):
    plan = plan_workbook(load_template(request.param))
    values = calculate(plan.to_book()).values
    return plan, values, {sheet.name: look.sheet_look(sheet, values, STYLES) for sheet in plan.sheets}


@pytest.mark.parametrize("numbers, expected", [
    ([14, 86, 28], "General"),                    # integers as integers
    ([1.5, 2.25, 3.0], "#,##0.00"),               # as many decimals as the numbers have, no more
    ([1.0123456789, 2.5], "#,##0.0000"),          # 5 significant digits for the largest
    ([1_412_226.3, 10_000.5, 563_000.25], "#,##0"),
    ([3e-6, 5e-5, 2e-7], "0.000E+00"),            # mostly below 1e-4
    ([1.0, 2e12], "0.000E+00"),                   # past 1e9
    ([], "General"),
])
def test_number_formats_fit_magnitudes(numbers, expected):
    assert look.fitted_format(numbers) == expected


def test_weights_keep_seven_significant_digits():
    assert look.fitted_format([1.0123456789, 2.5], weight=True) == "#,##0.000000"


def test_display_matches_the_format():
    assert look.display(1412226.25, "#,##0.00") == "1,412,226.25"
    assert look.display(-0.000123, "0.000E+00") == "-1.230E-04"
    assert look.display(8e15, "General") == "8E+15"
    assert look.display(0.1 + 0.2, "General") == "0.3"


def test_every_numeric_cell_fits_its_column(planned):
    """The model the writer sizes columns by: no formatted number is wider than its column."""
    plan, values, looks = planned
    for sheet in plan.sheets:
        sheet_look = looks[sheet.name]
        for (row, col), fmt in sheet_look.formats.items():
            value = look.cell_value(sheet, values, row, col)
            if look.is_number(value):
                shown = look.display(value, fmt)
                assert look.text_units(shown) + 1 <= sheet_look.widths[col], (sheet.name, row, col, shown)


def test_labels_beside_inputs_are_not_cut(planned):
    """A label whose right neighbour is filled (an input) gets a column as wide as it."""
    plan, values, looks = planned
    for sheet in plan.sheets:
        for (row, col), entry in sheet.cells.items():
            if "label" in entry.style and (row, col + 1) in sheet.cells and (row, col) not in looks[sheet.name].merges:
                assert looks[sheet.name].widths[col] >= look.text_units(entry.content), (sheet.name, row, col)


def test_no_page_break_cuts_a_chart_and_charts_cover_no_cell(planned):
    plan, values, looks = planned
    for sheet in plan.sheets:
        sheet_look = looks[sheet.name]
        grid = look.Grid(sheet_look.widths, sheet_look.heights)
        covered = set()
        for (row, col), chart in zip(sheet_look.charts, sheet.charts):
            last_row, last_col = grid.rows_spanned(row, chart.size[1]), grid.cols_spanned(col, chart.size[0])
            for page_start in sheet_look.breaks:
                assert not row < page_start <= last_row, (sheet.name, chart.title, page_start)
            area = {(r, c) for r in range(row, last_row + 1) for c in range(col, last_col + 1)}
            assert not area & set(sheet.cells), (sheet.name, chart.title, "covers cells")
            assert not area & covered, (sheet.name, chart.title, "covers another chart")
            covered |= area


def test_sheet_look_applies_to_any_sheet():
    """A sheet no builder here made (an about page, say): a note, numbers, a chart."""
    workbook = WorkbookPlan("t", "d")
    sheet = workbook.add_sheet("about")
    sheet.put(1, 1, "A long note " * 30, "note")
    sheet.put(3, 1, "value", "header")
    for row in range(4, 10):
        sheet.put(row, 1, row * 1234.5678, "number")
    sheet.charts.append(Chart("line", "c", [Series("v", Range(Ref(4, 1, "about", True, True), Ref(9, 1)))],
                              anchor=(3, 1)))
    result = look.sheet_look(sheet, {}, STYLES)
    assert result.formats[(4, 1)] == "#,##0" and result.widths[1] >= look.text_units("11,111")
    assert (1, 1) in result.merges and result.charts[0][1] > 1       # chart moved off the numbers
    assert result.scale <= 100 and result.repeat_row is None


def chart_series_colours(xml: str) -> list:
    """Each <c:ser>'s explicit colours (line and marker fills)."""
    return [set(re.findall(r'<a:srgbClr val="([0-9A-F]{6})"', series))
            for series in re.findall(r"<c:ser>.*?</c:ser>", xml, re.S)]


def multi_series_charts(path) -> dict:
    """chart part -> each series' explicit colours, for charts with two or more series."""
    with zipfile.ZipFile(path) as archive:
        found = {name: chart_series_colours(archive.read(name).decode())
                 for name in archive.namelist() if name.startswith("xl/charts/chart")}
    return {name: colours for name, colours in found.items() if len(colours) >= 2}


@pytest.mark.parametrize("path", WORKBOOKS, ids=[path.name for path in WORKBOOKS])
def test_every_series_of_a_chart_has_its_own_colour(path):
    for name, colours in multi_series_charts(path).items():
        assert all(len(c) == 1 for c in colours), f"{path.name} {name}: a series without one explicit colour"
        assert len({c.pop() for c in colours}) == len(colours), f"{path.name} {name}: two series share a colour"


def test_the_examples_have_charts_of_several_series():
    """So the colour test above judges something: two-neuron and average-grad draw several."""
    assert all(multi_series_charts(path) for path in WORKBOOKS if path.stem in ("two-neuron", "average-grad"))


def test_lambda_sheets_link_to_their_plain_twin():
    path = ROOT / "workbooks" / "average-grad.xlsx"
    book = openpyxl.load_workbook(path)
    for name in ("tests", "momentum", "smoothing"):
        sheet = book[name]
        banner = [cell.value for row in sheet.iter_rows(max_row=2) for cell in row
                  if isinstance(cell.value, str) and cell.value.startswith("Needs Excel 365")]
        links = [cell.hyperlink.location for row in sheet.iter_rows(max_row=2) for cell in row if cell.hyperlink]
        assert banner and links == [f"'{name}_plain'!A1"], (name, banner, links)


_SHOWN = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -1.0, 1, 0, True, False, "", "x", None, float("nan"), float("inf"),
                                    ExcelError("#DIV/0!"), 123456.789, -0.000123]),
                   st.floats(allow_nan=False, width=64), st.integers(-10**12, 10**12), st.text(max_size=12))


@given(st.lists(_SHOWN, min_size=1, max_size=30), st.sampled_from(["General", "#,##0.00", "0.000E+00", "0", "#,##0"]),
       st.booleans())
@example([0.0, -0.0], "#,##0.00", False)        # -0.00 is the wider, though equal to 0.0
@example([1, 1.0, True], "#,##0.00", True)       # TRUE the widest of three equal values
@settings(max_examples=300, deadline=None)
def test_the_widest_of_a_column_s_values_is_measured_once_per_distinct_value(values, num_format, bold):
    """column_widths measures each distinct value once (look.widest): the same width as
    measuring every value, zeros of either sign, 1, 1.0 and True apart."""
    expected = max(look.text_units(look.display(value, num_format), bold) for value in values)
    assert look.widest(values, num_format, bold, look.ShownWidths()) == expected
    unhashable = _Unhashable(12345.5)
    assert look.widest(values + [unhashable], num_format, bold, look.ShownWidths()) == \
        max(expected, look.text_units(look.display(unhashable, num_format), bold))


class _Unhashable(float):
    __hash__ = None
