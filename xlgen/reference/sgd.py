"""Stochastic gradient descent one data point at a time, as the course's sheets do it.

Each row uses the weights left by the previous row; an epoch is one pass over the data,
and the next epoch starts from the last row's weights. Every quantity a sheet shows is
recorded per row so verify can compare it cell by cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xlgen.reference.models import MODELS, bumped_losses, finite_gradient, loss


@dataclass
class Trace:
    """Per-row arrays (one entry per data row, epochs back to back) and per-epoch rmse."""
    before: dict          # weight name -> weights used by the row
    prediction: np.ndarray
    loss: np.ndarray      # squared error
    bumped_loss: dict     # weight name -> loss with that weight + step
    finite: dict          # weight name -> finite-difference gradient
    analytic: dict        # weight name -> analytic gradient
    after: dict           # weight name -> weights after the row's update
    rmse: np.ndarray      # per epoch: sqrt of the SUM of squared errors (the course's definition)


def rmse_per_epoch(losses: np.ndarray, rows_per_epoch: int) -> np.ndarray:
    return np.sqrt(losses.reshape(-1, rows_per_epoch).sum(axis=1))


def per_row_sgd(x, y, *, model: str, initial: dict, learning_rate: float, epochs: int,
                derivative: str = "analytic", finite_step: float = 0.01) -> Trace:
    """Run SGD over the data `epochs` times; `derivative` picks the gradient that updates."""
    network = MODELS[model]
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    rows = len(x) * epochs
    names = network.weights
    record = {key: {n: np.empty(rows) for n in names} for key in ("before", "bumped", "finite", "analytic", "after")}
    prediction, losses = np.empty(rows), np.empty(rows)
    w = {n: np.float64(initial[n]) for n in names}
    with np.errstate(all="ignore"):  # overflow is an outcome to show, not a crash
        for row in range(rows):
            xi, yi = x[row % len(x)], y[row % len(x)]
            base = loss(network, w, xi, yi)
            bumped = bumped_losses(network, w, xi, yi, finite_step)
            finite = finite_gradient(base, bumped, finite_step)
            analytic = network.gradient(w, xi, yi)
            used = finite if derivative == "finite" else analytic
            new = {n: w[n] - used[n] * learning_rate for n in names}
            prediction[row], losses[row] = network.predict(w, xi), base
            for key, values in (("before", w), ("bumped", bumped), ("finite", finite),
                                ("analytic", analytic), ("after", new)):
                for n in names:
                    record[key][n][row] = values[n]
            w = new
        rmse = rmse_per_epoch(losses, len(x))
    return Trace(record["before"], prediction, losses, record["bumped"], record["finite"],
                 record["analytic"], record["after"], rmse)


def linear_weights_entering(x: list, y: list, a: float, b: float, learning_rate: float, count: int,
                            nudge: dict | None = None) -> dict:
    """{"a": ..., "b": ...}: the weights each of `count` rows of per-row SGD on the linear
    model with the analytic gradient starts from (the points repeating), as float arrays.

    per_row_sgd's arithmetic, in its order, on plain floats and without its dicts per row
    (a row of a 300,000-cell sheet in well under a microsecond). `nudge` {weight: relative
    size}: after every row that weight moves by this times its size (at least 1e-6) where
    it is finite, as xlgen.verify.stepwise measures how far a run carries rounding."""
    points = len(x)
    entering_a, entering_b = [0.0] * count, [0.0] * count
    nudge_a, nudge_b = (nudge or {}).get("a", 0.0), (nudge or {}).get("b", 0.0)
    isfinite = math.isfinite
    for index in range(count):
        entering_a[index], entering_b[index] = a, b
        xi = x[index % points]
        residual2 = 2 * ((b + a * xi) - y[index % points])   # Linear.gradient's, of Linear.predict
        a, b = a - residual2 * xi * learning_rate, b - residual2 * learning_rate
        if nudge_a and isfinite(a):
            a = a + nudge_a * max(abs(a), 1e-6)
        if nudge_b and isfinite(b):
            b = b + nudge_b * max(abs(b), 1e-6)
    return {"a": np.array(entering_a, dtype=np.float64), "b": np.array(entering_b, dtype=np.float64)}
