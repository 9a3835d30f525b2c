"""The graddesc workbook end to end: build, cached values, verify passes and fails."""

import json
import shutil

import openpyxl
import pytest

from tests.conftest import ROOT, run_cli
from tests.workbook_files import read_formula, replace_formula
from xlgen.build import build


def test_cached_values_show_the_course_figures(built_graddesc):
    sheet = openpyxl.load_workbook(built_graddesc, data_only=True)["basic"]
    assert [c.value for c in sheet[3]][:14] == ["x", "y", "intercept", "slope", "y_pred", "err^2", "errb1",
                                                "est de/db", "erra1", "est de/da", "de/db", "de/da", "new a", "new b"]
    assert sheet["R4"].value == pytest.approx(150.755, abs=1e-3)          # rmse of epoch 1
    assert sheet["M32"].value == pytest.approx(2.613084491952597, abs=1e-9)   # new a, end of epoch 1
    assert sheet["N32"].value == pytest.approx(1.0715160204418617, abs=1e-9)  # new b
    assert sheet["R5"].value == pytest.approx(105.66, abs=5e-3)


def test_inputs_are_named_cells(built_graddesc):
    book = openpyxl.load_workbook(built_graddesc)
    names = {name: d.attr_text for name, d in book["basic"].defined_names.items()}
    assert names["learning_rate"] == "basic!$F$1"
    assert names["initial_a"] == "basic!$C$2" and names["initial_b"] == "basic!$C$1"
    assert book["basic"]["C33"].value == "=N32"       # epoch 2 starts from epoch 1's last new b
    assert book["basic"]["M4"].value == '=D4-IF(derivative="finite",J4,L4)*learning_rate'
    assert book["basic"]["A4"].value == "=data!B5"


def test_verify_passes_with_json_report(built_graddesc):
    code, out, _ = run_cli("verify", built_graddesc, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    assert report["first_divergence"] is None and report["mismatches"] == []
    assert report["cells_checked"] == report["formula_cells"] > 2000
    assert report["unchecked_formula_cells"] == []
    assert report["stale_cached_values"] == []


@pytest.mark.parametrize("cell, change", [
    ("G10", lambda f: f.replace("0.01", "0.02", 1)),
    ("M20", lambda f: f + "*1.5"),
    ("C33", lambda f: "M32"),             # the epoch boundary takes the wrong weight
    ("A40", lambda f: "data!B6"),         # a row reads the wrong data point
    ("R6", lambda f: f.replace("SUM", "SUMSQ")),
    ("K100", lambda f: f.replace("2*", "3*")),
])
def test_one_changed_formula_fails_and_is_named(built_graddesc, tmp_path, cell, change):
    mutated = tmp_path / "mutated.xlsx"
    replace_formula(built_graddesc, mutated, "basic", cell, change(read_formula(built_graddesc, "basic", cell)))
    code, out, _ = run_cli("verify", mutated, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert report["first_divergence"] == f"basic!{cell}"
    assert report["stale_cached_values"], "the cached value of the changed cell is now stale"


def test_changed_input_still_verifies(built_graddesc, tmp_path):
    """A user changes the learning rate (openpyxl drops every cached value): the reference follows."""
    book = openpyxl.load_workbook(built_graddesc)
    book["basic"]["F1"] = 0.001
    book["basic"]["C2"] = 1.5
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    code, out, _ = run_cli("verify", edited, "--json")
    report = json.loads(out)
    assert code == 0, out
    assert report["sheets"]["basic"]["inputs"]["learning_rate"]["value"] == 0.001
    assert report["formula_cells_without_cached_value"] == report["formula_cells"]


def test_derivative_switch_is_live(built_graddesc, tmp_path):
    book = openpyxl.load_workbook(built_graddesc)
    book["basic"]["L1"] = "finite"
    edited = tmp_path / "finite.xlsx"
    book.save(edited)
    code, out, _ = run_cli("verify", edited, "--json")
    assert code == 0, out
    from xlgen.engine import calculate, read_xlsx
    calc = calculate(read_xlsx(edited))
    assert calc.value("basic", 32, 13) == pytest.approx(2.6080618930940993, abs=1e-9)


def test_finite_template_option_and_epochs(tmp_path):
    path = tmp_path / "finite.xlsx"
    build("graddesc", path, ["derivative=finite", "epochs=20", "learning_rate=0.0002"])
    code, out, _ = run_cli("verify", path, "--json")
    report = json.loads(out)
    assert code == 0 and report["cells_checked"] > 20 * 29 * 12


def test_rebuild_gives_the_same_bytes(tmp_path):
    first, second = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    build("graddesc", first)
    build("graddesc", second)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() == (ROOT / "workbooks" / "graddesc.xlsx").read_bytes(), \
        "workbooks/graddesc.xlsx is out of date: run scripts/build-examples"
