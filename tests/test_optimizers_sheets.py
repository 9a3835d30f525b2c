"""The course's optimiser sheets in graddesc: the course's formulas kept, epochs unrolled,
annealing as formulas, named inputs, fastai's style, and verify catching changes."""

import json

import numpy as np
import openpyxl
import pytest

from tests.conftest import COURSE_FIXTURE, COURSE_X, run_cli
from tests.workbook_files import read_formula, replace_formula
from xlgen.build import build
from xlgen.engine import calculate, read_xlsx
from xlgen.errors import TemplateError
from xlgen.formula import cell_name
from xlgen.reference.data import line
from xlgen.reference.optimizer_runs import run_annealed
from xlgen.reference.optimizers import course_adam
from xlgen.sheets import plan_workbook
from xlgen.templates import load_template

OPTIMISERS = ("momentum", "rmsprop", "adam", "adam_ann")


@pytest.fixture(scope="module")
def built_book():
    return plan_workbook(load_template("graddesc")).to_book()


@pytest.mark.skipif(not COURSE_FIXTURE.exists(), reason="the course fixture is not in ../shared")
@pytest.mark.parametrize("sheet", OPTIMISERS)
def test_first_epoch_has_the_course_formulas(built_book, sheet):
    """Rows 4-32, columns b .. the state: the same formula text as the course's file
    (x and y link to the data sheet instead of holding pasted numbers)."""
    course = read_xlsx(COURSE_FIXTURE).sheet(sheet)
    ours = built_book.sheet(sheet)
    compared = 0
    for (row, col), text in course.formulas.items():
        if 4 <= row <= 32 and 3 <= col <= 13:
            assert ours.formulas.get((row, col)) == text, f"{sheet}!{cell_name(row, col)}"
            compared += 1
    assert compared >= 29 * 9
    assert ours.formulas[(1, 11)] == "1-J1"            # K1, the course's damping cell


def test_epochs_are_unrolled_from_the_row_above(built_book):
    momentum, rmsprop = built_book.sheet("momentum"), built_book.sheet("rmsprop")
    assert momentum.formulas[(33, 3)] == "H32" and momentum.formulas[(33, 4)] == "I32"
    assert momentum.formulas[(33, 10)] == "J32*$J$1+$K$1*F33"        # state carries across the epoch
    assert rmsprop.formulas[(33, 8)] == "C33-F33*$D$2/SQRT(J32)"     # the previous row's average
    assert momentum.constants[(3, 10)] == 0 and rmsprop.constants[(3, 10)] == 10000


def test_adam_ann_rule_is_written_as_formulas(built_book):
    sheet = built_book.sheet("adam_ann")
    # table at Q: epoch | rmse | lr | avg_grad2 | prev_grad2 | gradrat
    assert [sheet.constants[(3, c)] for c in range(17, 23)] == ["epoch", "rmse", "lr", "avg_grad2",
                                                                 "prev_grad2", "gradrat"]
    assert sheet.formulas[(4, 19)] == "D2" and sheet.formulas[(4, 21)] == "N3"
    assert sheet.formulas[(5, 19)] == "IF(V4>gradrat_limit,S4/lr_divisor,S4)"
    assert sheet.formulas[(4, 20)] == "SQRT(L32)+SQRT(M32)"
    assert sheet.formulas[(5, 21)] == "IF(T4<U4,T4,U4)"
    assert sheet.formulas[(4, 22)] == "T4/U4"
    assert sheet.formulas[(4, 8)] == "C4-J4*$D$2/SQRT(L4)"           # epoch 1: the course's formula
    assert sheet.formulas[(33, 8)] == "C33-J33*$S$5/SQRT(L33)"       # epoch 2: its own lr


def test_named_inputs(built_graddesc):
    book = openpyxl.load_workbook(built_graddesc)
    names = {sheet: {n: d.attr_text for n, d in book[sheet].defined_names.items()} for sheet in OPTIMISERS}
    assert names["momentum"]["learning_rate"] == "momentum!$D$2"
    assert names["momentum"]["initial_b"] == "momentum!$C$1" and names["momentum"]["initial_a"] == "momentum!$C$2"
    assert names["momentum"]["mom"] == "momentum!$J$1"
    assert names["rmsprop"]["sqr_mom"] == "rmsprop!$J$1"
    assert names["rmsprop"]["initial_sqr_avg_b"] == "rmsprop!$J$3"
    assert names["adam"]["sqr_mom"] == "adam!$L$1"
    assert names["adam_ann"]["prev_grad2"] == "adam_ann!$N$3"
    assert names["adam_ann"]["gradrat_limit"] == "adam_ann!$E$2"


def test_cached_values_follow_the_annealing_rule(built_graddesc):
    sheet = openpyxl.load_workbook(built_graddesc, data_only=True)["adam_ann"]
    y = line(COURSE_X, 30, 2)
    zeros = np.zeros(2)
    _, annealing = run_annealed(COURSE_X, y, course_adam(1.0, 0.9, 0.95), {"a": 1, "b": 1},
                                {"grad_avg": zeros, "sqr_avg": zeros}, 5, 1.0, 3000)
    assert [sheet[f"S{r}"].value for r in range(4, 9)] == list(annealing.lr) == [1, 0.25, 0.25, 0.25, 0.25]
    assert [sheet[f"V{r}"].value for r in range(4, 9)] == pytest.approx(list(annealing.gradrat), rel=1e-12)


def test_verify_checks_every_optimiser_cell(built_graddesc):
    code, out, _ = run_cli("verify", built_graddesc, "--json")
    report = json.loads(out)
    assert code == 0 and report["unchecked_formula_cells"] == []
    for sheet in OPTIMISERS:
        assert report["sheets"][sheet]["layout"] == sheet
        assert report["sheets"][sheet]["cells_checked"] > 5 * 29 * 10, sheet


@pytest.mark.parametrize("sheet, cell, change", [
    ("momentum", "J40", lambda f: f.replace("$K$1*", "$J$1*")),
    ("momentum", "H33", lambda f: f.replace("J33", "J32")),
    ("rmsprop", "H10", lambda f: f.replace("J9", "J10")),
    ("rmsprop", "K61", lambda f: f.replace("^2", "")),
    ("adam", "I100", lambda f: f + "*1.0001"),
    ("adam_ann", "S5", lambda f: f.replace("S4/lr_divisor", "S4/2")),
    ("adam_ann", "T4", lambda f: f.replace("M32", "M31")),
    ("adam_ann", "U7", lambda f: "U6"),                          # prev_grad2 no longer follows avg_grad2 down
    ("adam_ann", "H40", lambda f: f.replace("$S$5", "$S$4")),    # epoch 2 with epoch 1's lr
])
def test_one_changed_formula_fails_and_is_named(built_graddesc, tmp_path, sheet, cell, change):
    mutated = tmp_path / "mutated.xlsx"
    original = read_formula(built_graddesc, sheet, cell)
    assert change(original) != original
    replace_formula(built_graddesc, mutated, sheet, cell, change(original))
    code, out, _ = run_cli("verify", mutated, "--json")
    report = json.loads(out)
    assert code == 1 and report["first_divergence"] == f"{sheet}!{cell}"


def test_changed_inputs_still_verify(built_graddesc, tmp_path):
    """The reference follows whatever the inputs hold (openpyxl drops the cached values)."""
    book = openpyxl.load_workbook(built_graddesc)
    book["momentum"]["J1"] = 0.5
    book["rmsprop"]["J3"] = 500
    book["adam"]["D2"] = 0.05
    book["adam_ann"]["N3"] = 100              # anneals every epoch now
    book["adam_ann"]["F2"] = 10
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    code, out, _ = run_cli("verify", edited, "--json")
    report = json.loads(out)
    assert code == 0, report["mismatches"][:3]
    calc = calculate(read_xlsx(edited))
    assert calc.value("adam_ann", 5, 19) == pytest.approx(0.1)      # lr 1 / 10 after epoch 1


def test_fastai_style_builds_and_verifies(tmp_path):
    path = tmp_path / "fastai.xlsx"
    build("graddesc", path, [f"sheets.{s}.style=fastai" for s in OPTIMISERS] + ["epochs=2"])
    code, out, _ = run_cli("verify", path, "--json")
    report = json.loads(out)
    assert code == 0 and report["unchecked_formula_cells"] == []
    book = read_xlsx(path)
    adam = book.sheet("adam")
    assert adam.formulas[(4, 8)] == "C4-$D$2/P4*J4/(SQRT(L4/Q4)+eps)"
    assert adam.formulas[(4, 16)] == "IF(debias,$K$1*(1-$J$1^O4)/(1-$J$1),1)"
    assert book.sheet("rmsprop").formulas[(4, 8)] == "C4-$D$2*F4/(SQRT(J4)+eps)"
    assert book.sheet("momentum").formulas[(1, 11)] == "IF(dampening,1-J1,1)"
    values = calculate(book)
    # fastai's defaults: sqr_mom 0.99, eps 1e-8 / 1e-5, averages from 0, momentum undamped
    assert book.sheet("rmsprop").constants[(1, 10)] == 0.99
    assert book.sheet("rmsprop").constants[(3, 10)] == 0
    assert book.sheet("adam").constants[(2, 5)] == 1e-5 and book.sheet("adam").constants[(2, 6)] is True
    # Adam's first step with bias correction moves each weight by about lr (the sign of -grad)
    assert values.value("adam", 4, 8) - 1 == pytest.approx(0.1, rel=1e-4)
    assert values.value("momentum", 4, 10) == values.value("momentum", 4, 6)   # undamped: grad_avg = grad


def test_style_only_settings_are_refused(tmp_path):
    template = tmp_path / "t.toml"
    template.write_text('[data]\nintercept = 30\nslope = 2\nx = [1, 2]\n'
                        '[sheets.r]\nlayout = "rmsprop"\neps = 1e-8\n')
    with pytest.raises(TemplateError, match='sheets.r.eps is not a setting of style = "course"'):
        load_template(str(template))
    template.write_text('[data]\nintercept = 30\nslope = 2\nx = [1, 2]\n'
                        '[sheets.a]\nlayout = "adam"\nsqr_mom = 1\n')
    with pytest.raises(TemplateError, match="sheets.a.sqr_mom must be a number from 0 up to"):
        load_template(str(template))
    with pytest.raises(TemplateError, match="must be one of course, fastai"):
        load_template("graddesc", ["sheets.adam.style=keras"])
