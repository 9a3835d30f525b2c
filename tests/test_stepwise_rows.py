"""The two-neuron blocks are checked every row at once (stepwise.StepwiseRows over
neurons.array_model); the definition is row by row (stepwise.Stepwise over
neurons.row_model). Both must give every cell the same expected value, scale and bound,
bit for bit, and the same runs and summaries: here on random workbooks near and far from
the reference, with errors, text, blanks, overflow and signed zeros, for every model,
derivative and momentum setting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xlgen.engine.book import ExcelError
from xlgen.reference import models
from xlgen.reference.neurons import sgd_row, sgd_row_floats
from xlgen.verify import neurons, stepwise
from xlgen.verify.neurons import WEIGHTS, BlockInputs, BlockMatch, CheckedBlock

X = np.array([14, 86, 28, 51, 28, 29, 72, 62, 84, 15, 42, 62, 47, 35, 9, 38, 44, 99, 13, 21, 28, 20, 8, 64, 99,
              70, 27, 17, 8], dtype=np.float64)
STRANGE = [math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, -1e-310, 1e300, -1e300, 1.7976931348623157e308,
           "text", "", None, ExcelError("#NUM!"), ExcelError("#DIV/0!"), True, False, 3]


def _bits(value):
    """A value as something equal exactly when the bits are (every NaN alike, -0.0 apart)."""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return "nan" if math.isnan(value) else np.float64(value).tobytes()
    return (type(value).__name__, value)


def _headers(model: str, momentum: bool, drop=()) -> dict:
    headers = ["row", "x", "y"] + [*WEIGHTS[model]]
    if model != "linear":
        headers.append("ax+b")
    headers += ["y_pred", "err^2"]
    for w in WEIGHTS[model]:
        headers += [f"err{w}1", f"est de/d{w}", f"de/d{w}", f"new {w}"] + ([f"mom {w}"] if momentum else [])
    headers.append("blow-up")
    if model == "relu":
        headers.append("dead")
    return {h: c for c, h in enumerate((h for h in headers if h not in drop), start=1)}


def _scenario(seed: int, model: str, derivative: str, momentum, count: int, drop=(), learning_rate=None,
              scale=None):
    rng = np.random.default_rng(seed)
    weights = WEIGHTS[model]
    scale = 10.0 ** rng.integers(-3, 4) if scale is None else scale
    initial = {w: float(rng.choice([1.0, 0.5, -2.0, 30.0, 0.0, -0.0, 1e-200, 1e150])) for w in weights}
    if learning_rate is not None:
        initial = dict.fromkeys(weights, 1.0)
    else:
        learning_rate = float(rng.choice([1e-4, 1e-5, 1e-3, 0.01, 0.0, -1e-4, 3e-4]))
    threshold = float(rng.choice([1e6, 0.0, math.inf, math.nan, -1.0, 1e12]))
    block = BlockMatch("s", 1, _headers(model, momentum is not None, drop), list(range(2, 2 + count)), model,
                       momentum is not None)
    inputs = BlockInputs(learning_rate, derivative, initial, threshold, momentum)
    xs = np.resize(X * scale / 10, count)
    ys = 2 * xs + 30
    # the workbook: the reference's own run, each cell kept, moved by a few ulps or by much
    # more, or replaced by something strange
    plain = stepwise.run(neurons.row_model(block, inputs, xs, ys), count)
    columns = {}
    for key in block.col:
        column = []
        for index in range(count):
            value = plain[index].get(key, float(index % 29 + 1))
            kind = rng.random()
            if kind < 0.1:
                value = STRANGE[rng.integers(len(STRANGE))]
            elif kind < 0.3 and isinstance(value, float):
                value = float(value) * (1 + int(rng.integers(-20, 21)) * 2.0 ** -52)
            elif kind < 0.35 and isinstance(value, float):
                value = float(value) * (1 + float(rng.choice([1e-9, -1e-6, 1e-3, 1.0])))
            elif kind < 0.4:
                value = float(rng.standard_normal() * 10.0 ** rng.integers(-300, 300))
            column.append(value if not isinstance(value, np.floating) else float(value))
        columns[key] = column
    return block, inputs, xs, ys, columns


def _both(block, inputs, xs, ys, columns):
    count = len(block.rows)
    old = stepwise.Stepwise(neurons.row_model(block, inputs, xs, ys), count, lambda i, key: columns[key][i])
    new = stepwise.StepwiseRows(neurons.array_model(block, inputs, xs, ys), count, columns)
    return old, new


def differences(old, new, block, per_epoch: int) -> list:
    """Where the row-by-row and the all-rows-at-once checks differ, in any bit."""
    found = []
    count = len(block.rows)
    keys = list(old.local[0])
    if keys != new.keys:
        found.append(("keys", keys, new.keys))
    for key in keys:
        columns = new.column(key)
        for index in range(count):
            expected = old.cell(index, key)
            for part, (a, b) in enumerate(zip(expected, (columns[0][index], columns[1][index], columns[2][index]))):
                if _bits(a) != _bits(b):
                    found.append((key, index, part, a, b))
            if _bits(old.noise(index, key)) != _bits(new.noise(index, key)):
                found.append((key, index, "noise", old.noise(index, key), new.noise(index, key)))
    for run in range(len(old.runs)):
        for index in range(count):
            for key in old.runs[run][index]:
                if _bits(old.runs[run][index][key]) != _bits(new.runs[run][index][key]):
                    found.append(("run", run, index, key))
    checked = CheckedBlock(block, old, per_epoch)
    summaries = [checked.first_blowup(), checked.where("epoch"), checked.where("row")]
    for epoch in range(1, count // per_epoch + 1):
        summaries += [checked.rmse(epoch)] + [checked.at_end(epoch, f"new {w}") for w in block.weights()]
        if block.model == "relu":
            summaries.append(checked.dead_rows(epoch))
    for summarise in summaries:
        for a, b in ((_outcome(old.derived, summarise), _outcome(new.derived, summarise)),
                     (_outcome(old.link, 1.5, summarise, old.noise(count - 1, "err^2")),
                      _outcome(new.link, 1.5, summarise, new.noise(count - 1, "err^2")))):
            if list(map(_bits, a)) != list(map(_bits, b)):
                found.append(("summary", a, b))
    return found


def _outcome(function, *args):
    """function(*args), or the kind of exception it raises (an rmse over text: as before)."""
    try:
        return function(*args)
    except Exception as error:   # noqa: BLE001
        return ("raises", type(error).__name__)


SETTINGS = [(model, derivative, momentum) for model in ("linear", "collapse", "relu")
            for derivative in ("finite", "analytic") for momentum in (None, 0.9, 0.0, -0.5)]


@pytest.mark.parametrize("model, derivative, momentum", SETTINGS)
@pytest.mark.parametrize("seed", [1, 2])
def test_all_rows_at_once_is_row_by_row_bit_for_bit(seed, model, derivative, momentum):
    block, inputs, xs, ys, columns = _scenario(seed * 100 + SETTINGS.index((model, derivative, momentum)),
                                               model, derivative, momentum, 58)
    old, new = _both(block, inputs, xs, ys, columns)
    assert differences(old, new, block, 29) == []


@pytest.mark.parametrize("model", ["collapse", "relu"])
def test_same_bits_where_the_run_blows_up(model):
    """x near 1e31 at learning rate 1 overflows in the first step: inf and NaN in the runs."""
    block, inputs, xs, ys, columns = _scenario(7, model, "finite", None, 87, learning_rate=1.0, scale=1e32)
    old, new = _both(block, inputs, xs, ys, columns)
    assert not np.isfinite(new._run_columns["err^2"][0]).all()
    assert differences(old, new, block, 29) == []


def test_same_bits_without_some_columns():
    """A block without its finite-difference columns (a sheet edited by hand): the local
    check refines nothing from them."""
    drop = ("erra1", "est de/db", "de/dc")
    block, inputs, xs, ys, columns = _scenario(11, "collapse", "finite", 0.9, 29, drop)
    old, new = _both(block, inputs, xs, ys, columns)
    assert differences(old, new, block, 29) == []


def test_the_comparison_sees_one_bit():
    """The check above is exact: a bound one ulp wider in one row is a difference."""
    block, inputs, xs, ys, columns = _scenario(3, "relu", "finite", 0.9, 29)
    old, new = _both(block, inputs, xs, ys, columns)
    new.local_bound["new c"] = new.local_bound["new c"].copy()
    new.local_bound["new c"][5] = np.nextafter(new.local_bound["new c"][5], math.inf)
    assert {d[:2] for d in differences(old, new, block, 29)} == {("new c", 5)}


def test_squares_are_numpys_scalar_squares():
    """NumPy squares one float with C's pow, which rounds some squares differently from
    value * value (its ** 2 on arrays); rows at once must square as one row does."""
    odd = np.arange(94906267, 94906267 + 20000, 2, dtype=np.float64)   # squares on a tie
    values = np.concatenate([odd, -odd, odd * 2.0 ** -600, [1e200, -1e200, math.inf, math.nan, -0.0, 5e-324]])
    with np.errstate(all="ignore"):
        scalar = np.array([np.float64(v) ** 2 for v in values])
        assert (odd * odd != scalar[:len(odd)]).any()   # the reason for `square`
        assert [_bits(v) for v in models.square(values)] == [_bits(v) for v in scalar]


@pytest.mark.parametrize("model", ["linear", "collapse", "relu"])
@pytest.mark.parametrize("momentum", [None, 0.9])
def test_a_row_on_floats_and_on_arrays_is_sgd_row(model, momentum):
    rng = np.random.default_rng(5)
    weights = WEIGHTS[model]
    count = 400
    before = {w: rng.standard_normal(count) * 10.0 ** rng.integers(-300, 300, count) for w in weights}
    for w in weights:
        before[w][:len(STRANGE[:10])] = STRANGE[:10]
        rng.shuffle(before[w])
    mom = {w: rng.standard_normal(count) * 10.0 ** rng.integers(-5, 5, count) for w in weights}
    x = rng.choice(np.concatenate([X, [0.0, -0.0, 1e200, -3.5]]), count)
    y = 2 * x + 30
    settings = dict(learning_rate=1e-4, derivative="finite", momentum=momentum)
    arrays = sgd_row(model, before, x, y, mom_before=mom if momentum else None, **settings)
    for i in range(count):
        one_mom = {w: mom[w][i] for w in weights} if momentum else None
        one = sgd_row(model, {w: before[w][i] for w in weights}, x[i], y[i], mom_before=one_mom, **settings)
        floats = sgd_row_floats(model, {w: float(before[w][i]) for w in weights}, float(x[i]), float(y[i]),
                                mom_before=one_mom, **settings)
        for key, value in one.items():
            for name, single in (value.items() if isinstance(value, dict) else [(None, value)]):
                at_once = arrays[key][name] if name else arrays[key]
                on_floats = floats[key][name] if name else floats[key]
                assert _bits(single) == _bits(at_once[i]) == _bits(on_floats), (key, name, i)


@pytest.mark.parametrize("model, derivative, momentum", SETTINGS)
def test_a_runs_sizes_are_row_models(model, derivative, momentum):
    """The sizes a run nudges its carried values by (neurons._carried_sizes, on floats),
    and the local check's (neurons._magnitude, on arrays), are row_model's magnitudes."""
    rng = np.random.default_rng(9)
    weights = WEIGHTS[model]
    count = 300
    block = BlockMatch("s", 1, _headers(model, momentum is not None), list(range(2, 2 + count)), model,
                       momentum is not None)
    inputs = BlockInputs(float(rng.choice([1e-4, -3.0, 0.0, 1e300])), derivative, dict.fromkeys(weights, 1.0), 1e6,
                         momentum)
    strange = [v for v in STRANGE if isinstance(v, float)]
    names = [*weights] + ([f"mom {w}" for w in weights] if momentum is not None else [])
    states = {name: rng.standard_normal(count) * 10.0 ** rng.integers(-200, 200, count) for name in names}
    for column in states.values():
        column[rng.integers(count, size=40)] = rng.choice(strange, 40)
    xs = rng.choice(np.concatenate([X, [0.0, -0.0, 1e300, math.inf, math.nan]]), count)
    ys = 2 * xs + 30
    mom = {w: states[f"mom {w}"] for w in weights} if momentum is not None else None
    with np.errstate(all="ignore"):
        rows = sgd_row(model, {w: states[w] for w in weights}, xs, ys, learning_rate=inputs.learning_rate,
                       derivative=derivative, momentum=momentum, mom_before=mom)
    per_row = neurons.row_model(block, inputs, xs, ys)
    values = {"x": xs, "y": ys, "y_pred": rows["prediction"], "err^2": rows["loss"],
              **{f"err{w}1": rows["bumped"][w] for w in weights}}
    if "hidden" in rows:
        values["ax+b"] = rows["hidden"]
    with np.errstate(all="ignore"):
        at_once = neurons._magnitude(model, inputs, states, values)
    for i in range(count):
        state = {name: float(column[i]) for name, column in states.items()}
        one = {key: float(value[i]) for key, value in values.items()}
        out = {key: ({w: float(v[i]) for w, v in value.items()} if isinstance(value, dict) else float(value[i]))
               for key, value in rows.items()}
        expected = per_row.magnitude(state, one)
        carried = neurons._carried_sizes(model, inputs, state, one["x"], one["y"], out)
        assert len(carried) == len(weights) * (2 if momentum is not None else 1)
        for name, value in carried.items():
            key = name if name.startswith("mom") else f"new {name}"
            assert _bits(value) == _bits(expected[key]), (i, name)
        for key, value in expected.items():
            assert _bits(value) == _bits(at_once[key][i]), (i, key)
