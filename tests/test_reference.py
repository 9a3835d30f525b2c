"""The NumPy reference against the course's and the forum's figures (COURSE.md)."""

import numpy as np
import pytest

from tests.conftest import COURSE_X
from xlgen.reference.data import line
from xlgen.reference.sgd import per_row_sgd

Y = line(COURSE_X, 30, 2)


def run(**options):
    settings = dict(model="linear", initial={"a": 1, "b": 1}, learning_rate=1e-4, epochs=2)
    settings.update(options)
    return per_row_sgd(COURSE_X, Y, **settings)


def test_data_lies_on_the_line():
    assert Y[0] == 58 and Y[1] == 202 and len(Y) == 29


def test_analytic_epoch_one_matches_the_course():
    trace = run()
    assert trace.rmse[0] == pytest.approx(150.755, abs=1e-3)
    assert trace.after["a"][28] == pytest.approx(2.613084491952597, abs=1e-12)
    assert trace.after["b"][28] == pytest.approx(1.0715160204418617, abs=1e-12)
    assert trace.rmse[1] == pytest.approx(105.66, abs=5e-3)


def test_finite_difference_epoch_one_matches_the_forum_replay():
    trace = run(derivative="finite", epochs=1)
    assert trace.rmse[0] == pytest.approx(150.702, abs=1e-3)
    assert trace.after["a"][28] == pytest.approx(2.6080618930940993, abs=1e-12)
    assert trace.after["b"][28] == pytest.approx(1.072660342137999, abs=1e-12)


def test_first_row_matches_the_course_cached_values():
    """Row 4 of the course's basic sheet as Excel saved it."""
    trace = run(epochs=1)
    assert trace.prediction[0] == 15
    assert trace.loss[0] == 1849
    assert trace.bumped_loss["b"][0] == pytest.approx(1848.1401, abs=1e-9)
    assert trace.finite["b"][0] == pytest.approx(-85.99, abs=1e-8)
    assert trace.finite["a"][0] == pytest.approx(-1202.04, abs=1e-8)
    assert trace.analytic["b"][0] == -86 and trace.analytic["a"][0] == -1204
    assert trace.after["a"][0] == pytest.approx(1.1204) and trace.after["b"][0] == pytest.approx(1.0086)


def test_each_epoch_starts_from_the_last_rows_weights():
    trace = run(epochs=3)
    for epoch in (1, 2):
        assert trace.before["a"][29 * epoch] == trace.after["a"][29 * epoch - 1]
        assert trace.before["b"][29 * epoch] == trace.after["b"][29 * epoch - 1]


def test_huge_learning_rate_overflows_to_non_finite_not_an_exception():
    trace = run(learning_rate=1.0, epochs=4)
    assert not np.isfinite(trace.after["a"][-1])
