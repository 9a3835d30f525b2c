"""The titanic template end to end, and verify on the course's own titanic.xlsx."""

import json

import openpyxl
import pytest

from tests.conftest import ROOT, SHARED, run_cli
from tests.workbook_files import read_formula, replace_formula
from xlgen.build import build
from xlgen.engine import read_xlsx
from xlgen.reference.titanic import passengers

COURSE_TITANIC = SHARED / "fixtures" / "course22" / "titanic.xlsx"


@pytest.fixture(scope="module")
def built_titanic(tmp_path_factory):
    path = tmp_path_factory.mktemp("titanic") / "titanic.xlsx"
    build("titanic", path)
    return path


def course_solver_loss() -> float:
    """The loss of Solver's weights, as Excel saved it in the course's linear sheet (AA7)."""
    sheet = read_xlsx(COURSE_TITANIC).sheet("linear")
    assert sheet.constants[(7, 26)] == "Total loss:" and sheet.formulas[(7, 27)] == "AVERAGE(AD4:AD715)"
    return sheet.cached[(7, 27)]


def test_the_passengers_are_the_courses():
    sheet = read_xlsx(COURSE_TITANIC).sheet("linear")
    course = [tuple(sheet.constants.get((r, c)) for c in range(1, 9)) for r in range(4, 716)]
    assert passengers() == course and len(course) == 712


def test_gradient_descent_ends_within_5_percent_of_solver(built_titanic):
    sheet = openpyxl.load_workbook(built_titanic, data_only=True)["linear"]
    assert sheet["AG118"].value == 100                     # the last step
    gd_loss = sheet["AH118"].value
    solver = course_solver_loss()
    assert solver == pytest.approx(0.14422714930851, abs=1e-12)
    assert gd_loss <= 1.05 * solver, (gd_loss, solver)
    assert sheet["AH18"].value == pytest.approx(0.4044943820224719, abs=1e-12)   # step 0, weights all 0
    assert sheet["AD2"].value == pytest.approx(gd_loss, abs=1e-12)  # passenger by passenger, the same loss


def test_the_nnet_trained_by_minibatch_descent_ends_within_5_percent_of_solver(built_titanic):
    course = read_xlsx(COURSE_TITANIC).sheet("nnet")
    assert course.formulas[(1, 34)] == "AVERAGE(AH4:AH715)"
    solver = course.cached[(1, 34)]
    book = openpyxl.load_workbook(built_titanic, data_only=True)
    gd_loss = book["nnet"]["AH1"].value
    assert gd_loss <= 1.05 * solver, (gd_loss, solver)
    assert book["mmult"]["AA1"].value == pytest.approx(gd_loss, abs=1e-12)   # the same network with MMULT


def test_named_inputs_and_formulas(built_titanic):
    book = openpyxl.load_workbook(built_titanic)
    names = {name: d.attr_text for name, d in book["linear"].defined_names.items()}
    assert names["learning_rate"] == "linear!$AH$1" and names["steps"] == "linear!$AJ$1"
    assert names["initial_weights"] == "linear!$AI$18:$AR$18"
    sheet = book["linear"]
    assert sheet["AC4"].value == "=SUMPRODUCT(G4:P4,$R$4:$AA$4)"    # the course's linear model
    assert sheet["AI19"].value == "=IF(AG19<=steps,AI18-learning_rate*AS18,AI18)"
    assert sheet["R4"].value == "=AI$118"                            # the weights in the course's place


def test_verify_checks_every_formula(built_titanic):
    code, out, _ = run_cli("verify", built_titanic, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"]
    assert report["cells_checked"] == report["formula_cells"] > 50000
    assert set(report["sheets"]) == {"about", "linear", "nnet", "mmult"}
    assert report["unchecked_formula_cells"] == [] and report["lint"] == []


@pytest.mark.parametrize("cell, change", [
    ("J100", lambda f: f.replace("+1", "+2")),          # a feature
    ("AC300", lambda f: f + "*1.5"),                    # a prediction
    ("AS50", lambda f: f.replace("2*", "3*")),          # a gradient
    ("AN60", lambda f: f.replace("-learning_rate", "+learning_rate")),   # an update
    ("AH80", lambda f: f + "+1"),                       # a step's loss
    ("AM4", lambda f: f.replace("$G$4", "$G$5")),       # XᵀX reads a shifted column
])
def test_one_changed_formula_fails_at_its_cell(built_titanic, tmp_path, cell, change):
    mutated = tmp_path / "mutated.xlsx"
    replace_formula(built_titanic, mutated, "linear", cell, change(read_formula(built_titanic, "linear", cell)))
    code, out, _ = run_cli("verify", mutated, "--json")
    report = json.loads(out)
    assert code == 1 and report["first_divergence"] == f"linear!{cell}"


@pytest.mark.parametrize("sheet, cell, change", [
    ("nnet", "AE300", lambda f: f + "+0.01"),                # a ReLU
    ("nnet", "BH20", lambda f: f.replace("2*", "3*")),         # a gradient of unit 1
    ("nnet", "CG500", lambda f: f.replace(">0", ">=0.5")),     # an error passed back through ReLU1
    ("nnet", "CD900", lambda f: f + "*1.5"),                   # a batch passenger's Lin1
    ("mmult", "W200", lambda f: f.replace("$T$4", "$T$5")),    # MMULT with a shifted weight column
    ("mmult", "S7", lambda f: f.replace("$U$4", "$U$5")),      # a weight linked to the wrong unit
])
def test_one_changed_formula_per_sheet_fails_at_its_cell(built_titanic, tmp_path, sheet, cell, change):
    mutated = tmp_path / "mutated.xlsx"
    formula = read_formula(built_titanic, sheet, cell)
    assert change(formula) != formula
    replace_formula(built_titanic, mutated, sheet, cell, change(formula))
    code, out, _ = run_cli("verify", mutated, "--json")
    report = json.loads(out)
    assert code == 1 and report["first_divergence"] == f"{sheet}!{cell}"


def test_inputs_changed_in_the_sheet_are_followed(built_titanic, tmp_path):
    book = openpyxl.load_workbook(built_titanic)
    book["linear"]["AH1"] = 0.2
    book["linear"]["AJ1"] = 40          # rows after step 40 keep their weights
    book["linear"]["AR18"] = 0.5        # initial weight of Ones
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    code, out, _ = run_cli("verify", edited, "--json")
    report = json.loads(out)
    assert code == 0, out
    inputs = report["sheets"]["linear"]["inputs"]
    assert inputs["learning_rate"]["value"] == 0.2 and inputs["steps"]["value"] == 40
    from xlgen.engine import calculate
    calc = calculate(read_xlsx(edited))
    assert calc.value("linear", 118, 35) == calc.value("linear", 18 + 40, 35)   # frozen after step 40


def test_rebuild_gives_the_committed_bytes(tmp_path):
    path = tmp_path / "titanic.xlsx"
    build("titanic", path)
    assert path.read_bytes() == (ROOT / "workbooks" / "titanic.xlsx").read_bytes(), \
        "workbooks/titanic.xlsx is out of date: run scripts/build-examples"


def test_course_file_sheets_agree_with_the_reference_on_excels_saved_values():
    """Today's engine cannot read the course file's table references, so this runs the
    recogniser and reference against the values Excel saved: every formula cell of the
    linear, nnet and mmult sheets is expected, and Excel agrees with the reference."""
    from xlgen.verify import Context, titanic
    from xlgen.verify.core import agrees
    book = read_xlsx(COURSE_TITANIC)
    values = {(sheet.name, *cell): value for sheet in book.sheets for cell, value in sheet.cached.items()}
    context = Context(book, values, set())
    checked = {}
    for sheet in book.sheets:
        match = titanic.recognise(book, sheet)
        if match is None:
            continue
        result = titanic.check(sheet, match, context)
        assert set(result.expected) == set(sheet.formulas), sheet.name
        wrong = [cell for cell, value in result.expected.items() if not agrees(value, values[(sheet.name, *cell)])]
        assert wrong == [], (sheet.name, wrong[:5])
        checked[sheet.name] = len(result.expected)
    assert set(checked) == {"linear", "nnet", "mmult"} and sum(checked.values()) > 23000
    # Solver's weights are inputs read from the file
    linear_inputs = titanic.check(book.sheet("linear"), titanic.recognise(book, book.sheet("linear")), context).inputs
    assert linear_inputs["weights"] == {"cell": "linear!R4:AA4", "value": "10 numbers"}
    assert book.sheet("linear").constants[(4, 27)] == pytest.approx(0.6944119448688815)   # Solver's Ones weight


def test_verify_the_course_titanic_file():
    code, out, _ = run_cli("verify", COURSE_TITANIC, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["cells_checked"] >= 0.95 * report["formula_cells"]
