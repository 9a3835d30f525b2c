"""The runs verify carries on plain floats in one loop give the very bits of the general
row-by-row ones (and of the reference's own per-row SGD), blown-up runs included."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xlgen.reference.sgd import linear_weights_entering, per_row_sgd
from xlgen.verify import basic, stepwise


def same_bits(left: np.ndarray, right: np.ndarray) -> bool:
    return np.array_equal(np.asarray(left).view(np.int64), np.asarray(right).view(np.int64))


@pytest.mark.parametrize("learning_rate", [0.0001, 0.01, 0.3, 5.0])   # converging to overflowing
def test_basic_runs_in_one_loop_as_row_by_row(learning_rate):
    rng = np.random.default_rng(7)
    xs = rng.uniform(-10, 100, 29).round(2)
    ys = 2 * xs + 30 + rng.normal(0, 1, 29)
    model = basic.row_model(xs, ys, 1.0, 1.0, learning_rate, "analytic")
    assert model.entering is not None
    count = 29 * 40
    fast = stepwise._run_columns(model, count)
    slow = stepwise._run_columns(dataclasses.replace(model, entering=None), count)
    assert fast.keys() == slow.keys()
    for key in fast:
        assert same_bits(fast[key], slow[key]), key
    if learning_rate == 5.0:
        assert not np.isfinite(fast["new a"]).all()


def test_the_weights_entering_each_row_are_per_row_sgd_s():
    rng = np.random.default_rng(3)
    xs = rng.uniform(0, 10, 20)
    ys = 3 * xs + 1 + rng.normal(0, 0.5, 20)
    trace = per_row_sgd(xs, ys, model="linear", initial={"a": 1.0, "b": 1.0}, learning_rate=0.004, epochs=5)
    entering = linear_weights_entering(xs.tolist(), ys.tolist(), 1.0, 1.0, 0.004, 100)
    assert same_bits(entering["a"], trace.before["a"]) and same_bits(entering["b"], trace.before["b"])


@pytest.mark.parametrize("settings", [
    [],                                                          # the course's adam_ann, 5 epochs
    ["epochs=12", "sheets.adam_ann.learning_rate=40"],           # annealed many times, blowing up
    ["epochs=6", "sheets.adam_ann.style=fastai"],                # fastai's Adam: eps, debias, a step count
    ["epochs=6", "sheets.adam_ann.style=fastai", "sheets.adam_ann.learning_rate=1e6"],
])
def test_adam_ann_rates_are_run_annealed_s(tmp_path, settings):
    """The annealing schedule the checker takes from the rows' own float run is the
    reference's, bit for bit."""
    from xlgen.build import build
    from xlgen.engine import calculate, read_xlsx
    from xlgen.reference.optimizer_runs import run_annealed
    from xlgen.verify import Context, adam_ann, data
    from xlgen.verify.adam import open_adam, rows_model
    from xlgen.verify.locate import name_target

    path = tmp_path / "graddesc.xlsx"
    build("graddesc", path, settings)
    book = read_xlsx(path)
    calculation = calculate(book)
    context = Context(book, calculation.values, set(calculation.volatile))
    data_sheet = book.sheet("data")
    data.check(data_sheet, data.recognise(book, data_sheet), context)   # the points the rows link to
    sheet = book.sheet("adam_ann")
    found, optimizer, state, debiased = open_adam(sheet, adam_ann.recognise(book, sheet), context, "adam_ann")
    epochs, lr = len(found.rows) // found.rows_per_epoch, found.inputs["lr"]
    prev_grad2 = context.input(found.result, "prev_grad2", name_target(book, sheet.name, "prev_grad2"))
    limit = context.input(found.result, "limit", name_target(book, sheet.name, "gradrat_limit"))
    divisor = context.input(found.result, "divisor", name_target(book, sheet.name, "lr_divisor"))
    _, annealing = run_annealed(found.xs, found.ys, optimizer, found.inputs, state, epochs, lr, prev_grad2,
                                limit, divisor)
    with np.errstate(all="ignore"):
        rates = adam_ann.annealed_rates(rows_model(found, optimizer, state, debiased, [lr] * epochs),
                                        found.rows_per_epoch, epochs, lr, prev_grad2, limit, divisor)
    assert same_bits(rates, annealing.lr)
    assert len(rates) == (12 if "epochs=12" in settings else 6 if settings else 5)
    if "sheets.adam_ann.learning_rate=40" in settings:
        assert len(set(rates.tolist())) > 2
