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
