"""Stochastic gradient descent one data point at a time, as the course's sheets do it.

Each row uses the weights left by the previous row; an epoch is one pass over the data,
and the next epoch starts from the last row's weights. Every quantity a sheet shows is
recorded per row so verify can compare it cell by cell.
"""

from __future__ import annotations

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
