"""The forum's experiments: SGD one data point at a time on linear, collapse and ReLU
models, with finite or analytic derivatives and optional momentum on the derivatives.

`sgd_row` is one row of a sheet: everything the row shows, computed from the weights
(and momentum) the row starts with. `sgd_rows` iterates it over the data, epochs back
to back. Verify uses both: the trajectory from the initial weights (the whole run), and
`sgd_row` fed a workbook's own previous row (each step on its own), because when the
weights grow chaotically a difference in the last bit early on may become anything later.

Overflow is an outcome, not a crash: non-finite numbers stand for Excel's #NUM!, and
like Excel's errors they stay non-finite in every row that depends on them.
"""

from __future__ import annotations

import math

import numpy as np

from xlgen.reference.models import MODELS, bumped_losses, finite_gradient, loss

FINITE_STEP = 0.01


def sgd_row(model: str, before: dict, x: float, y: float, *, learning_rate: float,
            derivative: str = "finite", finite_step: float = FINITE_STEP,
            momentum: float | None = None, mom_before: dict | None = None) -> dict:
    """One SGD step on one data point.

    `before`: weights at the start of the row. With `momentum` (beta), each weight's
    update uses the damped running average of its derivative,
    mom = beta*mom_before + (1-beta)*derivative (the forum's "mom", starting at 0), in
    place of the derivative itself.

    Returns per-row quantities: before, hidden (a*x+b, for two-neuron models),
    prediction, loss, bumped (loss with each weight + step), finite, analytic, used
    (the derivative that drives the update), mom (after this row, with momentum) and
    after (the new weights). Every value is an np.float64 (non-finite for #NUM!).

    Given arrays (x, y, the weights and momentum one element per row), it computes
    every row at once, each element with the bits of that row computed alone (NumPy does
    the same IEEE operation on each element; `square` squares with pow as for one float).
    """
    network = MODELS[model]
    x, y = np.float64(x), np.float64(y)
    w = {name: np.float64(before[name]) for name in network.weights}
    with np.errstate(all="ignore"):
        base = loss(network, w, x, y)
        bumped = bumped_losses(network, w, x, y, finite_step)
        finite = finite_gradient(base, bumped, finite_step)
        analytic = network.gradient(w, x, y)
        used = finite if derivative == "finite" else analytic
        row = {
            "before": w,
            "prediction": network.predict(w, x),
            "loss": base,
            "bumped": bumped,
            "finite": finite,
            "analytic": analytic,
            "used": used,
        }
        if hasattr(network, "hidden"):
            row["hidden"] = w["a"] * x + w["b"]
        if momentum is not None:
            beta = np.float64(momentum)
            previous = {name: np.float64((mom_before or {}).get(name, 0.0)) for name in network.weights}
            damp = 1 - beta
            mom = {name: previous[name] * beta + damp * used[name] for name in network.weights}
            row["mom"] = mom
            row["after"] = {name: w[name] - mom[name] * learning_rate for name in network.weights}
        else:
            row["after"] = {name: w[name] - used[name] * learning_rate for name in network.weights}
    return {key: _scalars(value) for key, value in row.items()}


def sgd_row_floats(model: str, before: dict, x: float, y: float, *, learning_rate: float,
                   derivative: str = "finite", finite_step: float = FINITE_STEP,
                   momentum: float | None = None, mom_before: dict | None = None) -> dict:
    """`sgd_row` on Python floats: the same operations in the same order, so the same
    bits (tests hold it to sgd_row), for a run carried row after row many times faster
    than on NumPy's scalars. Every value is a float."""
    weights = MODELS[model].weights
    x, y, step = float(x), float(y), float(finite_step)
    a, b = float(before["a"]), float(before["b"])
    if model == "linear":
        w = {"a": a, "b": b}
        hidden = None
        prediction = b + a * x                                   # Linear.predict: b + a*x
        bumped = {"a": _square_float(y - (b + (a + step) * x)), "b": _square_float(y - ((b + step) + a * x))}
    else:
        c, d = float(before["c"]), float(before["d"])
        w = {"a": a, "b": b, "c": c, "d": d}
        hidden = a * x + b                                       # the models' hidden: a*x + b
        moved_a, moved_b = (a + step) * x + b, a * x + (b + step)
        if model == "relu":
            inside, moved_a, moved_b = _relu_float(hidden), _relu_float(moved_a), _relu_float(moved_b)
        else:
            inside = hidden
        prediction = c * inside + d                              # c*hidden + d
        bumped = {"a": _square_float(y - (c * moved_a + d)), "b": _square_float(y - (c * moved_b + d)),
                  "c": _square_float(y - ((c + step) * inside + d)), "d": _square_float(y - (c * inside + (d + step)))}
    base = _square_float(y - prediction)
    finite = {name: (bumped[name] - base) / step for name in weights}
    residual2 = 2 * (prediction - y)   # d(err^2)/d(prediction), as each model's gradient
    if model == "linear":
        analytic = {"b": residual2, "a": residual2 * x}
    else:
        if model == "collapse":
            through = residual2 * c
        else:   # relu: the slope of max(z, 0) is 1 above 0 and 0 elsewhere; #NUM! stays
            through = (residual2 * c if hidden > 0 else 0.0) if math.isfinite(hidden) else math.nan
        analytic = {"a": through * x, "b": through, "c": residual2 * inside, "d": residual2}
    used = finite if derivative == "finite" else analytic
    row = {"before": w, "prediction": prediction, "loss": base, "bumped": bumped, "finite": finite,
           "analytic": analytic, "used": used}
    if hidden is not None:
        row["hidden"] = hidden
    if momentum is not None:
        beta = float(momentum)
        previous = mom_before or {}
        damp = 1 - beta
        mom = {name: float(previous.get(name, 0.0)) * beta + damp * used[name] for name in weights}
        row["mom"] = mom
        row["after"] = {name: w[name] - mom[name] * learning_rate for name in weights}
    else:
        row["after"] = {name: w[name] - used[name] * learning_rate for name in weights}
    return row


def _relu_float(z: float) -> float:
    """Relu.hidden on a float: np.maximum(z, 0.0) (0.0 for z = -0.0, as NumPy), #NUM! kept."""
    if not math.isfinite(z):
        return math.nan
    return z if z > 0.0 else 0.0


def _square_float(value: float) -> float:
    """`square` of one float: C's pow, inf where it overflows (Python's ** raises)."""
    try:
        return math.pow(value, 2.0)
    except OverflowError:
        return math.inf


def _scalars(value):
    if isinstance(value, dict):
        return {k: np.float64(v) for k, v in value.items()}
    return np.float64(value)


def sgd_rows(model: str, x, y, *, initial: dict, learning_rate: float, epochs: int,
             derivative: str = "finite", finite_step: float = FINITE_STEP,
             momentum: float | None = None) -> list[dict]:
    """`sgd_row` over the data `epochs` times, each row starting from the previous row's
    new weights (and momentum); the first from `initial` (momentum from 0)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    weights = dict(initial)
    mom = None
    rows = []
    for index in range(len(x) * epochs):
        row = sgd_row(model, weights, x[index % len(x)], y[index % len(x)], learning_rate=learning_rate,
                      derivative=derivative, finite_step=finite_step, momentum=momentum, mom_before=mom)
        rows.append(row)
        weights, mom = row["after"], row.get("mom")
    return rows


def rmse(losses) -> float:
    """The course's rmse of an epoch: square root of the SUM of the squared errors."""
    with np.errstate(all="ignore"):
        return np.float64(np.sqrt(np.sum(np.asarray(losses, dtype=np.float64))))


def rmse_per_epoch(rows: list[dict], rows_per_epoch: int) -> list:
    losses = [row["loss"] for row in rows]
    return [rmse(losses[start:start + rows_per_epoch]) for start in range(0, len(losses), rows_per_epoch)]


def blown_up(loss, threshold: float) -> bool:
    """A squared error above `threshold`, or not a finite number (Excel: an error)."""
    return not math.isfinite(loss) or loss > threshold


def first_blowup(losses, threshold: float) -> int:
    """1-based index of the first row that blew up; 0 when none did."""
    for index, value in enumerate(losses, start=1):
        if blown_up(value, threshold):
            return index
    return 0


def dead(hidden) -> bool:
    """A ReLU row is dead when a*x + b < 0: a, b and c get no derivative from it."""
    return bool(hidden < 0)
