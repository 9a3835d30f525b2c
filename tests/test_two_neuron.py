"""The forum's experiments (two-neuron workbook): the figures in the cached values, verify
passing and failing at the right cell, Excel's error semantics, chaotic growth."""

from __future__ import annotations

import json
import math

import numpy as np
import openpyxl
import pytest

from tests.conftest import COURSE_X, ROOT, run_cli
from tests.two_neuron_cells import block_cell, sweep_block_header_row, table_cell
from tests.workbook_files import read_formula, replace_formula
from xlgen.build import build
from xlgen.engine import calculate, read_xlsx
from xlgen.engine.book import ExcelError
from xlgen.errors import TemplateError
from xlgen.reference.data import line
from xlgen.reference.models import Collapse, Relu
from xlgen.reference.neurons import first_blowup, rmse_per_epoch, sgd_rows
from xlgen.templates import load_template
from xlgen.verify.core import agrees
from xlgen.verify.stepwise import RowModel, Stepwise

WORKBOOK = ROOT / "workbooks" / "two-neuron.xlsx"
Y = line(COURSE_X, 30, 2)
ONES = {"a": 1, "b": 1, "c": 1, "d": 1}


@pytest.fixture(scope="module")
def cached():
    return openpyxl.load_workbook(WORKBOOK, data_only=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = tmp_path_factory.mktemp("two-neuron") / "two-neuron.xlsx"
    build("two-neuron", path)
    return path


# --- the reference ------------------------------------------------------------------

def test_reference_shows_the_forum_figures():
    linear = sgd_rows("linear", COURSE_X, Y, initial={"a": 1, "b": 1}, learning_rate=1e-4, epochs=2, derivative="analytic")
    assert rmse_per_epoch(linear, 29)[0] == pytest.approx(150.755, abs=1e-3)
    collapse = sgd_rows("collapse", COURSE_X, Y, initial=ONES, learning_rate=1e-4, epochs=2)
    assert first_blowup([r["loss"] for r in collapse], 1e6) == 26
    relu = sgd_rows("relu", COURSE_X, Y, initial=ONES, learning_rate=1e-4, epochs=3)
    assert rmse_per_epoch(relu, 29)[0] == pytest.approx(419.2, abs=0.05)
    assert relu[28]["after"]["a"] < 0
    assert all(r["finite"][w] == 0 for r in relu[29:] for w in "abc")
    slow = sgd_rows("collapse", COURSE_X, Y, initial=ONES, learning_rate=1e-5, epochs=3)
    assert [round(float(v), 2) for v in rmse_per_epoch(slow, 29)] == [173.09, 87.84, 87.77]


@pytest.mark.parametrize("model", [Collapse, Relu])
def test_analytic_gradients_match_central_differences(model):
    w = {"a": 0.7, "b": 1.3, "c": -0.4, "d": 2.0}
    x, y = 3.0, 11.0
    loss = lambda weights: (y - model.predict(weights, x)) ** 2
    for name, value in model.gradient(w, x, y).items():
        h = 1e-6
        estimate = (loss({**w, name: w[name] + h}) - loss({**w, name: w[name] - h})) / (2 * h)
        assert float(value) == pytest.approx(estimate, rel=1e-6), name


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_reference_non_finite_is_excel_error():
    """max(#NUM!, 0) is #NUM! (not 0); a flat ReLU gives 0 even if the residual overflowed."""
    assert math.isnan(Relu.hidden({"a": np.inf, "b": -np.inf}, 1.0))
    assert math.isnan(Relu.hidden({"a": -np.inf, "b": 0.0}, 1.0))
    dead = Relu.gradient({"a": -1.0, "b": 0.0, "c": 1e308, "d": 1e308}, 2.0, 0.0)
    assert dead["a"] == 0 and dead["b"] == 0 and not math.isfinite(dead["d"])
    overflow = Relu.gradient({"a": np.nan, "b": 0.0, "c": 1.0, "d": 0.0}, 2.0, 0.0)
    assert all(math.isnan(v) for v in (overflow["a"], overflow["b"], overflow["c"]))


# --- the cached values ----------------------------------------------------------------

def test_cached_values_show_the_forum_figures(cached):
    assert cached["linear"]["B6"].value == pytest.approx(150.755, abs=1e-3)        # rmse, epoch 1

    collapse = cached["collapse"]
    assert [c.value for c in collapse[11][:3]] == ["first blow-up step", "epoch", "row"]
    assert [c.value for c in collapse[12][:3]] == [26, 1, 26]
    err2 = lambda step: collapse[block_cell(WORKBOOK, "collapse", "err^2", step)].value
    assert err2(25) <= 1e6 < err2(26)

    relu = cached["relu"]
    assert [c.value for c in relu[5][:7]] == ["epoch", "rmse", "a", "b", "c", "d", "dead rows"]
    end = {e: {w: relu.cell(5 + e, 3 + i).value for i, w in enumerate("abcd")} for e in (1, 2, 3)}
    assert end[1]["a"] < 0
    for w in "abc":
        assert end[1][w] == end[2][w] == end[3][w]
        assert len({relu[block_cell(WORKBOOK, "relu", f"new {w}", s)].value for s in range(30, 88)}) == 1
    assert end[1]["d"] != end[2]["d"] != end[3]["d"]
    assert relu["G7"].value == relu["G8"].value == 29                                 # every row dead

    sweep = cached["lr_sweep"]
    assert sweep["B5"].value == pytest.approx(1e-5)
    assert sweep[table_cell(WORKBOOK, "lr_sweep", 4, "rmse 3", 1)].value == pytest.approx(87.8, abs=0.1)
    assert [sweep.cell(4 + run, 10).value for run in range(1, 7)] == [0, 0, 26, 4, 3, 2]   # first blow-up

    compare = cached["compare"]
    assert [c.value for c in compare[3][:4]] == ["epoch", "linear", "collapse", "relu"]
    assert compare["B4"].value == cached["linear"]["B6"].value
    assert compare["C4"].value == cached["collapse"]["B6"].value

    init = cached["init"]                                 # d near the intercept beats the linear model
    assert init["I8"].value < cached["linear"]["B8"].value


# --- verify ----------------------------------------------------------------------------

def test_verify_passes_and_covers_every_formula():
    code, out, _ = run_cli("verify", WORKBOOK, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] is True, out[:2000]
    assert report["unchecked_formula_cells"] == []
    assert report["cells_checked"] == report["formula_cells"] > 30000
    assert report["stale_cached_values"] == []
    assert {s["layout"] for s in report["sheets"].values()} >= {"model", "runs", "compare", "derivatives"}


def test_checked_model_blocks_do_not_keep_the_verification_alive():
    """model.checked_sheet caches blocks by Context (weakly): a block that referred to its
    Context kept that Context, its book and its values alive after the verification."""
    import gc

    from xlgen.verify import _Order, check_book, model
    from xlgen.verify.core import ComputedValues, Report
    book = read_xlsx(WORKBOOK)
    calculation = calculate(book)
    gc.collect()
    gc.disable()
    try:
        report = check_book(Report(str(WORKBOOK)), book, ComputedValues.of(calculation), _Order(calculation),
                            calculation.volatile, saved=calculation.saved, constant=calculation.constant)
        assert report.ok
        assert len(model._checked) == 0   # its Context is gone without the garbage collector
    finally:
        gc.enable()


def _swap_momentum_terms(formula: str) -> str:
    """Daniel's LAMBDA bug: grad*mom + avg*damp instead of avg*mom + grad*damp."""
    previous, used = formula.split("*momentum+(1-momentum)*")
    return f"{used}*momentum+(1-momentum)*{previous}"


SWEEP_RUN3 = sweep_block_header_row(6, 3)
MUTATIONS = [
    # sheet, where, change
    ("linear", ("block", "erra1", 5), lambda f: f.replace("0.01", "0.02", 1)),
    ("collapse", ("block", "errb1", 26), lambda f: f.replace("0.01", "0.02", 1)),    # the blow-up row itself
    ("collapse", ("block", "new c", 27), lambda f: f + "*1.5"),                      # deep in the explosion
    ("collapse", ("block", "blow-up", 40), lambda f: f.replace(">0,", ">99,", 1)),
    ("relu", ("block", "dead", 40), lambda f: f.replace(",1,0)", ",0,1)")),
    ("relu", ("cell", "F7"), lambda f: f.replace("82", "81")),                     # d at the end of epoch 2
    ("compare", ("cell", "D5"), lambda f: f.replace("B7", "B8")),                  # links the wrong epoch
    ("lr_sweep", ("cell", "I5"), lambda f: f.replace("SUM(", "SUMSQ(")),
    ("lr_sweep", ("sweep", "new a", 26), lambda f: f + "*1.5"),
    ("init", ("cell", "L9"), lambda f: f[:-2] + "+1))"),                           # row of the first blow-up
    ("derivatives", ("block", "mom d", 10), _swap_momentum_terms),
    ("derivatives", ("block", "no ReLU", 12), lambda f: f.replace("36", "37")),
]


def _where(sheet, spec):
    kind = spec[0]
    if kind == "cell":
        return spec[1]
    if kind == "sweep":
        return block_cell(WORKBOOK, sheet, spec[1], spec[2], header_row=SWEEP_RUN3)
    return block_cell(WORKBOOK, sheet, spec[1], spec[2])


@pytest.mark.parametrize("sheet, spec, change", MUTATIONS, ids=[f"{m[0]}-{m[1][1]}" for m in MUTATIONS])
def test_one_changed_formula_fails_and_is_named(tmp_path, sheet, spec, change):
    cell = _where(sheet, spec)
    original = read_formula(WORKBOOK, sheet, cell)
    changed = change(original)
    assert changed != original, f"the mutation did not change {sheet}!{cell}: {original}"
    mutated = tmp_path / "mutated.xlsx"
    replace_formula(WORKBOOK, mutated, sheet, cell, changed)
    code, out, _ = run_cli("verify", mutated, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert report["first_divergence"] == f"{sheet}!{cell}", report["mismatches"][:3]


def test_a_one_ulp_difference_does_not_fail_a_correct_sheet(tmp_path):
    """An engine that rounds one cell differently (here: forced, 1 unit in the last place,
    early in epoch 1) ends, through the collapse model's chaotic growth, with weights that
    differ in the 8th digit; a whole-run comparison alone would fail hundreds of cells."""
    cell = block_cell(WORKBOOK, "collapse", "new a", 2)
    formula = read_formula(WORKBOOK, "collapse", cell)
    nudged = tmp_path / "ulp.xlsx"
    replace_formula(WORKBOOK, nudged, "collapse", cell, f"({formula})*(1+2.220446049250313E-16)")
    plain, other = calculate(read_xlsx(WORKBOOK)), calculate(read_xlsx(nudged))
    drifted = [key for key, value in plain.values.items()
               if key[0] == "collapse" and isinstance(value, float) and not agrees(value, other.values[key])]
    assert len(drifted) > 100, "the nudge should have been amplified"
    code, out, _ = run_cli("verify", nudged, "--json")
    assert code == 0, json.loads(out)["mismatches"][:3]


def test_analytic_derivatives_overflow_to_num_errors_and_still_verify(tmp_path):
    """Collapse with calculus instead of the 0.01 step overflows in epoch 2: #NUM! from the
    first overflowing cell down every row, in the workbook and in the reference alike."""
    book = openpyxl.load_workbook(WORKBOOK)
    book["collapse"]["I1"] = "analytic"
    edited = tmp_path / "analytic.xlsx"
    book.save(edited)
    code, out, _ = run_cli("verify", edited, "--json")
    assert code == 0, json.loads(out)["mismatches"][:3]
    calc = calculate(read_xlsx(edited))
    last = 24 + 87
    assert calc.value("collapse", last, 9) == ExcelError("#NUM!")                       # err^2, last row
    assert isinstance(calc.value("collapse", 6, 2), float)                             # rmse, epoch 1
    assert calc.value("collapse", 7, 2) == ExcelError("#NUM!")                          # rmse, epoch 2
    assert [calc.value("collapse", 12, c) for c in (1, 2, 3)] == [27, 1, 27]


def test_changed_input_follows_through_to_the_comparison(tmp_path):
    book = openpyxl.load_workbook(WORKBOOK)
    book["collapse"]["G1"] = 0.00001
    edited = tmp_path / "slow.xlsx"
    book.save(edited)
    code, out, _ = run_cli("verify", edited, "--json")
    report = json.loads(out)
    assert code == 0, report["mismatches"][:3]
    assert report["sheets"]["collapse"]["inputs"]["learning_rate"]["value"] == 0.00001
    calc = calculate(read_xlsx(edited))
    assert calc.value("compare", 6, 3) == pytest.approx(87.77, abs=0.01)
    assert calc.value("collapse", 12, 1) == 0 and calc.value("collapse", 12, 2) == "none"


def test_rebuild_gives_the_same_bytes(built):
    again = built.parent / "again.xlsx"
    build("two-neuron", again)
    assert built.read_bytes() == again.read_bytes()
    assert built.read_bytes() == WORKBOOK.read_bytes(), \
        "workbooks/two-neuron.xlsx is out of date: run `xlgen build --all`"


# --- templates -------------------------------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("sheets.derivatives.momentum=1", "below 1"),
    ("blowup_threshold=0", "greater than 0"),
    ("sheets.compare.colour=red", "unknown key"),
    ("sheets.derivatives.no_relu=linear", "not a two-neuron sheet"),
    ("sheets.derivatives.momentum=0", "must be above 0"),
])
def test_bad_options_are_refused(override, message):
    with pytest.raises(TemplateError, match=message):
        from xlgen.sheets import plan_workbook
        plan_workbook(load_template("two-neuron", [override]))


def test_initial_weights_must_belong_to_the_model(tmp_path):
    template = tmp_path / "t.toml"
    template.write_text('[data]\nintercept = 30\nslope = 2\nx = [1, 2]\n'
                        '[sheets.m]\nlayout = "model"\nmodel = "linear"\ninitial = { a = 1, c = 2 }\n')
    with pytest.raises(TemplateError, match="linear model has weights a, b, not c"):
        build(str(template), tmp_path / "t.xlsx")


def test_other_models_and_settings_build_and_verify(tmp_path):
    path = tmp_path / "variant.xlsx"
    build("two-neuron", path, ["epochs=2", "sheets.collapse.derivative=analytic", "sheets.derivatives.momentum=0.5",
                               "sheets.linear.derivative=finite"])
    code, out, _ = run_cli("verify", path, "--json")
    report = json.loads(out)
    assert code == 0, report["mismatches"][:3]
    assert report["unchecked_formula_cells"] == []


# --- the local/global check on its own -------------------------------------------------

def _logistic(r=3.99):
    return RowModel(initial={"x": 0.3}, carry={"x": "next"},
                    row=lambda state, i: {"x": state["x"], "next": r * state["x"] * (1 - state["x"])},
                    noisy=("x",))


def _simulate(count, nudge_at=None, wrong_at=None, r=3.99):
    values, x = [], 0.3
    for i in range(count):
        nxt = r * x * (1 - x)
        if i == nudge_at:                     # one unit in the last place
            nxt *= 1 + 2.0 ** -52
        if i == wrong_at:
            nxt *= 1.001
        values.append({"x": x, "next": nxt})
        x = nxt
    return values


def _failures(stepwise, sheet_values):
    bad = []
    for i, row in enumerate(sheet_values):
        for key in ("x", "next"):
            expected, scale, bound = stepwise.cell(i, key)
            if not agrees(expected, row[key], scale, bound=bound):
                bad.append((i, key))
    return bad


def test_stepwise_forgives_rounding_but_not_a_wrong_step():
    """The logistic map at r = 3.99 doubles a difference every step or so."""
    count = 80
    nudged = _simulate(count, nudge_at=2)
    plain_run = _simulate(count)
    assert sum(not agrees(a["next"], b["next"]) for a, b in zip(plain_run, nudged)) > 20
    check = Stepwise(_logistic(), count, lambda i, key: nudged[i][key])
    assert _failures(check, nudged) == []

    wrong = _simulate(count, wrong_at=30)
    check = Stepwise(_logistic(), count, lambda i, key: wrong[i][key])
    assert _failures(check, wrong)[0] == (30, "next")


@pytest.mark.skipif(__import__("shutil").which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_recomputes_the_same_figures():
    """A second engine (LibreOffice) recomputing the file shows the forum's figures too,
    although in the chaotic rows its last bits, and so later rows, differ from ours."""
    from xlgen.engine.libreoffice import recalculate_with_libreoffice
    values = recalculate_with_libreoffice(WORKBOOK)
    assert values["linear"][(6, 2)] == pytest.approx(150.755, abs=1e-3)
    assert [values["collapse"][(12, c)] for c in (1, 2, 3)] == [26, 1, 26]
    relu = {e: [values["relu"][(5 + e, c)] for c in (3, 4, 5, 6)] for e in (1, 2, 3)}
    assert relu[1][0] < 0 and relu[1][:3] == relu[2][:3] == relu[3][:3] and relu[1][3] != relu[3][3]
    assert values["lr_sweep"][(5, 9)] == pytest.approx(87.8, abs=0.1)


@pytest.mark.parametrize("sheet, key, typed", [
    ("collapse", "err^2", '"abc"'),   # text the SUM of an epoch's rmse skips
    ("collapse", "err^2", '"12"'),    # text that looks like a number: SUM skips it too
    ("relu", "dead", "TRUE"),         # a boolean in the dead rows the summary counts
    ("relu", "dead", '"x"'),
])
def test_text_or_a_boolean_in_a_summed_column_fails_at_that_cell(tmp_path, sheet, key, typed):
    """A user's text where a number belongs is named as the first wrong cell; the
    summaries over the column take it as SUM over a range does (it crashed verify)."""
    cell = block_cell(WORKBOOK, sheet, key, 3)
    typed_in = tmp_path / "typed.xlsx"
    replace_formula(WORKBOOK, typed_in, sheet, cell, typed)
    code, out, err = run_cli("verify", typed_in, "--json")
    assert code == 1, err
    assert json.loads(out)["first_divergence"] == f"{sheet}!{cell}"
