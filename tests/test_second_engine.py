"""The second engine: LibreOffice recomputes every example workbook, the NumPy reference
judges its values.

xlgen writes cached values computed by its own engine, and verify recomputes with that
same engine; a mistake the engine makes would agree with itself. LibreOffice Calc is an
engine nobody here wrote. It has no LAMBDA, so sheets that call a workbook LAMBDA are
listed as skipped, with that reason; their plain-formula twins are checked.
"""

from __future__ import annotations

import html
import json
import re
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from xlgen.engine.libreoffice import soffice_path

WORKBOOKS = sorted((ROOT / "workbooks").glob("*.xlsx"))

pytestmark = pytest.mark.skipif(
    soffice_path() is None,
    reason="LibreOffice (soffice) is not installed; run scripts/install-libreoffice (CI does, in scripts/test)")

SMALL_TEMPLATE = """\
title = "small"
epochs = 2
learning_rate = 0.0001
derivative = "analytic"

[data]
intercept = 30
slope = 2
x = [14, 86, 28, 51, 28, 29]

[sheets.basic]
layout = "basic"
initial = { a = 1, b = 1 }
"""


def sheets_calling_a_lambda(path: Path) -> set[str]:
    """Read from the XML, independently of xlgen's reader: sheets with a formula that calls
    a defined name whose definition is a LAMBDA."""
    with zipfile.ZipFile(path) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
        rels = archive.read("xl/_rels/workbook.xml.rels").decode()
        lambdas = {name for name, text in re.findall(r'<definedName name="([^"]+)"[^>]*>([^<]*)</definedName>', workbook)
                   if re.match(r"=?(_xlfn\.)?LAMBDA\(", html.unescape(text), re.I)}
        targets = dict(re.findall(r'<Relationship Id="([^"]+)"[^>]*Target="([^"]+)"', rels))
        targets.update({rid: target for target, rid in re.findall(r'<Relationship [^>]*Target="([^"]+)"[^>]*Id="([^"]+)"', rels)})
        found = set()
        for name, rid in re.findall(r'<sheet name="([^"]+)"[^>]*r:id="([^"]+)"', workbook):
            xml = archive.read("xl/" + targets[rid].lstrip("/").removeprefix("xl/")).decode()
            formulas = [html.unescape(text) for text in re.findall(r"<f[^>]*>([^<]*)</f>", xml)]
            if any(re.search(rf"(?<![\w.]){re.escape(lam)}\(", text, re.I) for lam in lambdas for text in formulas):
                found.add(html.unescape(name))
    return found


def test_there_are_example_workbooks():
    assert WORKBOOKS, "workbooks/ is empty: run scripts/build-examples"


@pytest.mark.parametrize("path", WORKBOOKS, ids=[path.name for path in WORKBOOKS])
def test_example_workbook_recomputed_by_libreoffice_agrees_with_the_reference(path):
    from xlgen.verify import verify_file
    ours = verify_file(path)
    libre = verify_file(path, engine="libreoffice")

    assert libre.engine == "libreoffice"
    first = libre.mismatches[0].as_json() if libre.mismatches else None
    assert libre.ok, f"LibreOffice disagrees with the reference; first: {first}; lint: {libre.lint[:3]}"
    assert libre.mismatches == [] and libre.lint == []

    # the LAMBDA sheets, and only they, are skipped, each with the reason
    skipped = {item.split(":", 1)[0]: item.split(":", 1)[1] for item in libre.skipped
               if "!" not in item.split(":", 1)[0]}   # whole sheets; cells (about!C22) below
    assert set(skipped) == sheets_calling_a_lambda(path)
    for sheet, reason in skipped.items():
        assert "LAMBDA" in reason and "LibreOffice has no LAMBDA" in reason, (sheet, reason)

    # nothing else dropped: every sheet xlgen's engine checks, LibreOffice checks too,
    # with the same cells
    ours_cells = {check.sheet: set(check.expected) for check in ours.checks}
    libre_cells = {check.sheet: set(check.expected) for check in libre.checks}
    assert set(libre_cells) == set(ours_cells) - set(skipped)
    # the about sheet's numbers that sum up a skipped sheet are skipped with it, by cell
    skipped_cells = {}
    for item in libre.skipped:
        where = item.split(":", 1)[0]
        if "!" in where:
            sheet, cell = where.split("!")
            skipped_cells.setdefault(sheet, set()).add(cell)
    assert all(any(name in skipped for name in re.findall(r"sums up (\w+)", item))
               for item in libre.skipped if "!" in item.split(":", 1)[0])
    from xlgen.formula import cell_name
    assert all({cell_name(*c) for c in libre_cells[sheet]} | skipped_cells.get(sheet, set())
               == {cell_name(*c) for c in ours_cells[sheet]} for sheet in libre_cells)
    assert libre.cells_checked > 0


@pytest.fixture(scope="module")
def small_workbook(tmp_path_factory) -> Path:
    from xlgen.build import build
    folder = tmp_path_factory.mktemp("second-engine")
    template = folder / "small.toml"
    template.write_text(SMALL_TEMPLATE)
    path = folder / "small.xlsx"
    build(str(template), path)
    return path


def test_a_wrong_formula_fails_under_libreoffice_too(small_workbook, tmp_path):
    from tests.workbook_files import read_formula, replace_formula
    wrong = tmp_path / "wrong.xlsx"
    replace_formula(small_workbook, wrong, "basic", "F5", read_formula(small_workbook, "basic", "F5") + "*1.5")

    code, out, _ = run_cli("verify", wrong, "--engine", "libreoffice", "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"] and report["engine"] == "libreoffice"
    wrong_cells = [mismatch["cell"] for mismatch in report["mismatches"]]
    assert "basic!F5" in wrong_cells
    first = next(m for m in report["mismatches"] if m["cell"] == "basic!F5")
    assert first["formula"] == "=(B5-E5)^2*1.5"
    assert first["actual"] == pytest.approx(1.5 * first["expected"], rel=1e-12)
    # cells that do not depend on F5 still agree
    assert not any(cell.startswith("data!") for cell in wrong_cells)
    assert not any(re.fullmatch(r"basic![A-E]\d+", cell) for cell in wrong_cells)


def test_libreoffice_recomputes_rather_than_reading_the_saved_values(small_workbook, tmp_path):
    """Every saved value of the basic sheet's formulas replaced by 12345: a LibreOffice
    that kept saved values would fail; it recomputes and agrees."""
    stale = tmp_path / "stale.xlsx"
    from tests.workbook_files import sheet_part
    part = sheet_part(small_workbook, "basic")
    with zipfile.ZipFile(small_workbook) as original, zipfile.ZipFile(stale, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == part:
                data, count = re.subn(rb"(</f>)<v>[^<]*</v>", rb"\1<v>12345</v>", data)
                assert count > 50
            copy.writestr(info, data)

    from xlgen.verify import verify_file
    report = verify_file(stale, engine="libreoffice")
    assert report.ok, report.mismatches[:1]
    # the stale saves are flagged where saved values are judged: by xlgen's engine
    ours = verify_file(stale)
    assert ours.ok and len(ours.stale) > 50
    assert all(mismatch.actual == 12345 for mismatch in ours.stale)


def test_verify_engine_option_names_the_engine(small_workbook):
    code, out, _ = run_cli("verify", small_workbook, "--engine", "libreoffice")
    assert code == 0, out
    assert "(engine: libreoffice)" in out.splitlines()[0]
    assert "OK:" in out
