"""Exponential moving average of a curve with fastai's average_grad, and its debiasing."""

from __future__ import annotations

import numpy as np

from xlgen.reference.optimizers import average_grad, debias


def moving_average(values, beta: float, start: float = 0.0, dampening: bool = True) -> np.ndarray:
    """average_grad called once per value, from `start`."""
    out, average = [], np.float64(start)
    for value in np.asarray(values, dtype=np.float64):
        average = average_grad(None, value, beta, dampening=dampening, grad_avg=average)["grad_avg"]
        out.append(average)
    return np.array(out)


def debiased(averages, beta: float, steps) -> np.ndarray:
    """Each average divided by debias(beta, 1-beta, step): the pull towards 0 removed."""
    return np.asarray(averages) / debias(beta, 1 - beta, np.asarray(steps, dtype=np.float64))
