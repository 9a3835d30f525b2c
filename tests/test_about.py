"""The about sheet: first and active in every workbook, a link per sheet, and numbers to
look for whose formulas verify checks like any other cell, from what they say they are."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import ROOT, run_cli
from tests.workbook_files import read_formula, replace_formula

WORKBOOKS = sorted((ROOT / "workbooks").glob("*.xlsx"))

SMALL_MODELS = """\
title = "small two-neuron"
epochs = 2
learning_rate = 0.0001
derivative = "finite"
blowup_threshold = 1e6

[data]
intercept = 30
slope = 2
x = [14, 86, 28, 51, 28, 29, 72, 62, 84, 15, 42, 62, 47, 35, 9, 38,
     44, 99, 13, 21, 28, 20, 8, 64, 99, 70, 27, 17, 8]

[sheets.linear]
layout = "model"
model = "linear"
initial = { a = 1, b = 1 }

[sheets.collapse]
layout = "model"
model = "collapse"
initial = { a = 1, b = 1, c = 1, d = 1 }
"""


def about_rows(path: Path) -> dict:
    """label (sheet: look at) -> (cell, formula) of the numbers table."""
    sheet = openpyxl.load_workbook(path)["about"]
    rows = {}
    for row in sheet.iter_rows(min_row=1):
        a, b, c = row[0], row[1], row[2]
        if isinstance(c.value, str) and c.value.startswith("="):
            rows[f"{a.value}: {b.value}"] = (c.coordinate, c.value[1:])
    return rows


def verify_json(path: Path) -> dict:
    import json
    code, out, _ = run_cli("verify", path, "--json")
    report = json.loads(out)
    assert code == (0 if report["ok"] else 1)
    return report


@pytest.fixture(scope="module")
def small_graddesc(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("about") / "graddesc.xlsx"
    assert run_cli("build", "graddesc", "-o", path, "--set", "epochs=2", "--quiet")[0] == 0
    return path


@pytest.fixture(scope="module")
def small_models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("about-models")
    template = folder / "models.toml"
    template.write_text(SMALL_MODELS)
    path = folder / "models.xlsx"
    assert run_cli("build", template, "-o", path, "--quiet")[0] == 0
    return path


@pytest.mark.parametrize("path", WORKBOOKS, ids=[path.name for path in WORKBOOKS])
def test_about_is_the_first_and_active_sheet_with_a_link_to_every_other(path):
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[0] == "about" and book.active.title == "about"
    links = {cell.hyperlink.location for row in book["about"].iter_rows() for cell in row if cell.hyperlink}
    assert links == {f"'{name}'!A1" for name in book.sheetnames[1:]}
    text = " ".join(str(cell.value) for row in book["about"].iter_rows() for cell in row if cell.value)
    assert f"xlgen build {path.stem}" in text and "What this workbook teaches" in text


@pytest.mark.parametrize("path", WORKBOOKS, ids=[path.name for path in WORKBOOKS])
def test_every_number_on_the_about_sheet_is_checked(path):
    report = verify_json(path)
    assert report["ok"] and report["unchecked_formula_cells"] == []
    # the course's GD workbooks sum up rmse, weights, blow-ups and tests; the others their loss or output
    least = 4 if path.stem in ("graddesc", "two-neuron", "average-grad") else 1
    assert report["sheets"]["about"]["cells_checked"] == len(about_rows(path)) >= least


def test_the_numbers_graddesc_shows(small_graddesc):
    rows = about_rows(small_graddesc)
    assert {"basic: rmse after epoch 1", "basic: rmse after epoch 2 (the last)", "basic: final a (new a, last row)",
            "basic: final b (new b, last row)", "adam: rmse after epoch 1"} <= set(rows)
    values = openpyxl.load_workbook(small_graddesc, data_only=True)
    basic = values["basic"]
    # the cached values are the linked cells' (rmse table at R4, last new a at M61)
    assert values["about"][rows["basic: rmse after epoch 1"][0]].value == basic["R4"].value
    assert values["about"][rows["basic: final a (new a, last row)"][0]].value == basic["M61"].value


@pytest.mark.parametrize("label, wrong", [
    ("basic: rmse after epoch 1", "basic!$R$5"),                # epoch 2's rmse
    ("basic: final a (new a, last row)", "basic!$M$60"),        # the row before the last
    ("basic: final b (new b, last row)", "basic!$M$61"),        # a, not b
    ("rmsprop: rmse after epoch 2 (the last)", "momentum!$O$5"),  # another sheet's
])
def test_a_wrong_link_on_the_about_sheet_is_named(small_graddesc, tmp_path, label, wrong):
    cell, _ = about_rows(small_graddesc)[label]
    broken = tmp_path / "broken.xlsx"
    replace_formula(small_graddesc, broken, "about", cell, wrong)
    report = verify_json(broken)
    assert not report["ok"] and report["first_divergence"] == f"about!{cell}"


def test_the_blowup_row_is_found_again_from_the_values(small_models, tmp_path):
    rows = about_rows(small_models)
    values = openpyxl.load_workbook(small_models, data_only=True)["about"]
    epoch, data_row = (values[rows[f"collapse: {what}"][0]].value
                       for what in ("first blow-up: epoch (none: never)", "first blow-up: data row"))
    assert (epoch, data_row) == (1, 26)   # as on the forum
    assert values[rows["linear: first blow-up: epoch (none: never)"][0]].value == "none"
    assert verify_json(small_models)["ok"]

    # the about cell reads the summary's epoch where its data row belongs: named
    cell, formula = rows["collapse: first blow-up: data row"]
    broken = tmp_path / "broken.xlsx"
    replace_formula(small_models, broken, "about", cell, formula.replace("$C$", "$B$"))
    assert verify_json(broken)["first_divergence"] == f"about!{cell}"

    # the collapse sheet's own summary made wrong: it is named first, and the about cell
    # that links to it fails too, since its expected value comes from the rows
    summary = re.sub(r"^collapse!\$?([A-Z]+)\$?(\d+)$", r"\1\2", formula)
    wrong = tmp_path / "wrong-summary.xlsx"
    replace_formula(small_models, wrong, "collapse", summary, read_formula(small_models, "collapse", summary) + "+1")
    report = verify_json(wrong)
    failed = [mismatch["cell"] for mismatch in report["mismatches"]]
    assert failed[0] == f"collapse!{summary}" and f"about!{cell}" in failed


def test_a_higher_threshold_moves_the_blowup_and_still_verifies(tmp_path):
    path = tmp_path / "late.xlsx"
    template = tmp_path / "models.toml"
    template.write_text(SMALL_MODELS)
    assert run_cli("build", template, "-o", path, "--set", "sheets.collapse.blowup_threshold=1e300", "--quiet")[0] == 0
    rows = about_rows(path)
    values = openpyxl.load_workbook(path, data_only=True)["about"]
    assert values[rows["collapse: first blow-up: epoch (none: never)"][0]].value != 1
    assert verify_json(path)["ok"]


def test_the_test_counts_follow_the_tests(tmp_path):
    path = ROOT / "workbooks" / "average-grad.xlsx"
    rows = about_rows(path)
    values = openpyxl.load_workbook(path, data_only=True)["about"]
    assert values[rows["tests_plain: fastai tests: PASS"][0]].value == 31
    assert values[rows["tests_plain: fastai tests: FAIL"][0]].value == 0
    cell, formula = rows["tests_plain: fastai tests: PASS"]
    short = formula.replace("$I$16,", "$I$15,", 1)   # one result fewer
    assert short != formula
    broken = tmp_path / "broken.xlsx"
    replace_formula(path, broken, "about", cell, short)
    assert verify_json(broken)["first_divergence"] == f"about!{cell}"


def test_the_build_command_is_written_in_one_order(tmp_path):
    one, other = tmp_path / "one.xlsx", tmp_path / "other.xlsx"
    assert run_cli("build", "graddesc", "-o", one, "--set", "learning_rate=0.0002", "--set", "epochs=2",
                   "--quiet")[0] == 0
    assert run_cli("build", "graddesc", "-o", other, "--set", "epochs=2", "--set", "learning_rate=0.0002",
                   "--quiet")[0] == 0
    assert one.read_bytes() == other.read_bytes()
    text = [cell.value for row in openpyxl.load_workbook(one)["about"].iter_rows() for cell in row
            if isinstance(cell.value, str) and cell.value.startswith("Built by xlgen")]
    assert text and text[0].endswith("xlgen build graddesc --set epochs=2 --set learning_rate=0.0002")


def test_libreoffice_skips_the_numbers_of_lambda_sheets_with_a_reason():
    from xlgen.engine.libreoffice import soffice_path
    if soffice_path() is None:
        pytest.skip("LibreOffice (soffice) is not installed")
    from xlgen.verify import verify_file
    report = verify_file(ROOT / "workbooks" / "average-grad.xlsx", engine="libreoffice")
    assert report.ok, report.mismatches[:2]
    rows = about_rows(ROOT / "workbooks" / "average-grad.xlsx")
    skipped = [item for item in report.skipped if item.startswith("about!")]
    lambda_rows = [cell for label, (cell, _) in rows.items() if label.split(":")[0] in ("tests", "momentum")]
    assert sorted(item.split(":")[0] for item in skipped) == sorted(f"about!{cell}" for cell in lambda_rows)
    assert all("LAMBDA" in item for item in skipped)
    assert not any(cell.startswith("about!") for cell in report.unchecked)
