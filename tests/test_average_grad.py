"""average-grad.xlsx: fastai's average_grad and average_sqr_grad as documented named
LAMBDAs, fastai's tests in the sheet, plain twins, momentum through the LAMBDA, smoothing."""

import json
import re
import zipfile

import openpyxl
import pytest

from tests.conftest import ROOT, run_cli
from xlgen.build import build
from xlgen.engine import calculate, read_xlsx

LAMBDA_AVERAGE_GRAD = ("_xlfn.LAMBDA(_xlpm.grad,_xlpm.mom,_xlpm.dampening,_xlpm.grad_avg,"
                       "_xlpm.grad_avg*_xlpm.mom+IF(_xlpm.dampening,1-_xlpm.mom,1)*_xlpm.grad)")
FORUM_BUG = ("_xlfn.LAMBDA(_xlpm.grad,_xlpm.mom,_xlpm.dampening,_xlpm.grad_avg,"
             "_xlpm.grad*_xlpm.mom+_xlpm.grad_avg*IF(_xlpm.dampening,1-_xlpm.mom,1))")
TEST_SHEETS = ("tests", "tests_plain")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = tmp_path_factory.mktemp("average-grad") / "average-grad.xlsx"
    build("average-grad", path)
    return path


def workbook_xml(path) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read("xl/workbook.xml").decode()


def with_workbook_xml(source, target, edit) -> None:
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in archive.infolist():
            data = archive.read(item.filename)
            if item.filename == "xl/workbook.xml":
                data = edit(data.decode()).encode()
            out.writestr(item, data)


def verdicts(values: dict, sheet: str) -> list:
    return [v for (s, _, _), v in values.items() if s == sheet and v in ("PASS", "FAIL")]


def test_lambdas_are_stored_as_excel_365_needs_them_with_comments(built):
    xml = workbook_xml(built)
    names = dict(re.findall(r'<definedName name="(AVERAGE_[A-Z_]+)"[^>]*>([^<]*)</definedName>', xml))
    assert names["AVERAGE_GRAD"] == LAMBDA_AVERAGE_GRAD
    assert names["AVERAGE_SQR_GRAD"].startswith("_xlfn.LAMBDA(_xlpm.grad,_xlpm.sqr_mom,_xlpm.dampening,_xlpm.sqr_avg,")
    comments = dict(re.findall(r'<definedName name="(AVERAGE_[A-Z_]+)" comment="([^"]+)"', xml))
    assert set(comments) == {"AVERAGE_GRAD", "AVERAGE_SQR_GRAD"}
    for name, comment in comments.items():
        assert len(comment) <= 255 and "dampening" in comment and "grad" in comment, name
    assert "grad_avg: the previous average" in comments["AVERAGE_GRAD"]
    book = openpyxl.load_workbook(built)       # a second reader sees the comments too
    assert book.defined_names["AVERAGE_GRAD"].comment.startswith("fastai's average_grad")


def test_the_lambdas_are_used_and_the_twins_are_plain(built):
    book = read_xlsx(built)
    assert book.sheet("tests").formulas[(5, 6)] == "AVERAGE_GRAD(B5,C5,D5,E5)"
    assert book.sheet("tests_plain").formulas[(5, 6)] == "E5*C5+IF(D5,1-C5,1)*B5"
    assert book.sheet("momentum").formulas[(4, 10)] == "AVERAGE_GRAD(F4,$J$1,dampening,J3)"
    assert book.sheet("momentum_plain").formulas[(4, 10)] == "J3*$J$1+$K$1*F4"
    assert book.sheet("smoothing").formulas[(7, 4)] == "AVERAGE_GRAD(C7,beta,TRUE,D6)"
    for twin in ("tests_plain", "momentum_plain", "smoothing_plain"):
        assert not any("AVERAGE_" in text or "LAMBDA" in text for text in book.sheet(twin).formulas.values()), twin
    values = calculate(book).values
    for sheet, twin in (("tests", "tests_plain"), ("momentum", "momentum_plain"), ("smoothing", "smoothing_plain")):
        cells = {(r, c): v for (s, r, c), v in values.items() if s == sheet}
        assert cells and all(values[(twin, r, c)] == pytest.approx(v, rel=1e-15) if isinstance(v, float)
                             else values[(twin, r, c)] == v for (r, c), v in cells.items()), sheet


def test_every_test_passes_in_cached_values_and_after_recomputation(built):
    cached = openpyxl.load_workbook(built, data_only=True)
    for sheet in TEST_SHEETS:
        results = [cell.value for row in cached[sheet].iter_rows() for cell in row if cell.value in ("PASS", "FAIL")]
        assert len(results) == 12 + 12 + 1 + 6 and set(results) == {"PASS"}, sheet
    values = calculate(read_xlsx(built)).values
    for sheet in TEST_SHEETS:
        assert len(verdicts(values, sheet)) == 31 and set(verdicts(values, sheet)) == {"PASS"}


def test_fastai_figures_in_the_test_sheet(built):
    sheet = openpyxl.load_workbook(built, data_only=True)["tests"]
    by_name = {}
    for row in sheet.iter_rows(min_row=5):
        if isinstance(row[0].value, str) and isinstance(row[1].value, (int, float)):
            by_name.setdefault(row[0].value, []).append([cell.value for cell in row])
    first, second = by_name["first call"][:3], by_name["second call"][:3]     # average_grad, mom 0.9
    assert [r[5] for r in first] == [4, 5, 6] and [r[5] for r in second] == pytest.approx([7.6, 9.5, 11.4])
    assert by_name["sgd_step"][0][4] == pytest.approx(0.9)
    adam = by_name["first step"]
    assert [r[10] for r in adam] == pytest.approx([0.9, 1.9, 2.9], abs=1e-5)      # each p moved by about -lr


def test_verify_passes_and_covers_every_formula(built):
    code, out, _ = run_cli("verify", built, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["unchecked_formula_cells"] == []
    assert report["cells_checked"] == report["formula_cells"]
    layouts = {name: sheet["layout"] for name, sheet in report["sheets"].items()}
    assert layouts["tests"] == layouts["tests_plain"] == "average_grad_tests"
    assert layouts["momentum"] == layouts["momentum_plain"] == "momentum"
    assert layouts["smoothing"] == layouts["smoothing_plain"] == "smoothing"
    assert report["sheets"]["tests"]["cells_checked"] > 100


def test_the_forums_swapped_terms_fail_verify(built, tmp_path):
    """Daniel's AVERAGE_GRAD computed grad*mom + grad_avg*damp."""
    broken = tmp_path / "forum-bug.xlsx"
    with_workbook_xml(built, broken, lambda xml: xml.replace(">" + LAMBDA_AVERAGE_GRAD + "<", ">" + FORUM_BUG + "<"))
    assert FORUM_BUG in workbook_xml(broken)
    code, out, _ = run_cli("verify", broken, "--json")
    report = json.loads(out)
    assert code == 1 and report["first_divergence"] == "tests!F5"
    failing = {m["cell"].split("!")[0] for m in report["mismatches"]}
    assert {"tests", "momentum", "smoothing"} <= failing
    assert not failing & {"tests_plain", "momentum_plain", "smoothing_plain"}      # the twins do not call it
    values = calculate(read_xlsx(broken)).values
    assert "FAIL" in verdicts(values, "tests") and set(verdicts(values, "tests_plain")) == {"PASS"}


def test_smoothing_demo(built):
    book = openpyxl.load_workbook(built, data_only=True)
    sheet = book["smoothing"]
    assert [sheet[f"{c}5"].value for c in "ABCDE"] == ["n", "x", "sin(x)", "smoothed", "debiased"]
    assert sheet["B1"].value == 0.9 and sheet["B2"].value == 0
    assert sheet["D6"].value == 0 and sheet["D7"].value == pytest.approx(0.1 * sheet["C7"].value)   # from 0
    assert sheet["E7"].value == pytest.approx(sheet["D7"].value / (1 - 0.9 ** 2))   # debiased: / (1-beta^n)
    sines = [sheet[f"C{r}"].value for r in range(6, 106)]
    smoothed = [sheet[f"D{r}"].value for r in range(6, 106)]
    assert smoothed.index(max(smoothed)) > sines.index(max(sines))                # the average lags behind
    with zipfile.ZipFile(built) as archive:
        charts = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/charts/chart")]
    assert any("sin(x) smoothed with beta 0.9" in chart and chart.count("<c:ser>") == 3 for chart in charts)


def test_rebuild_gives_the_committed_bytes(built):
    assert built.read_bytes() == (ROOT / "workbooks" / "average-grad.xlsx").read_bytes(), \
        "workbooks/average-grad.xlsx is out of date: run scripts/build-examples"
