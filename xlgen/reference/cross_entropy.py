"""Softmax and cross-entropy as the course's entropy_example.xlsx computes them.

Every loss takes the logarithm to use: the course's sheet calls Excel's LOG, which is
base 10; PyTorch's `F.cross_entropy` and `F.binary_cross_entropy` use the natural log.
log10(p) = ln(p) / ln(10), so every base-10 loss is the natural-log loss divided by
ln(10) ~ 2.3026: the same minimum and the same ranking of predictions, a different scale
(and gradients 2.3 times smaller).
"""

from __future__ import annotations

import numpy as np

LOGS = {"log10": np.log10, "ln": np.log}


def softmax(outputs) -> dict:
    """exp of each activation, their total, each exp over the total, and the softmax total.

    An exp past the largest double is Excel's #NUM! (nan here), and so is everything
    computed from it: the total and every probability (IEEE's x / inf = 0 is not Excel's)."""
    with np.errstate(over="ignore", invalid="ignore"):
        exp = np.exp(np.asarray(outputs, dtype=np.float64))
        exp[~np.isfinite(exp)] = np.nan
        total = _sum(exp)
        probabilities = exp / total
    return {"exp": exp, "exp_total": total, "softmax": probabilities, "softmax_total": _sum(probabilities)}


def categorical_terms(probabilities, actuals, log: str) -> np.ndarray:
    """actual * log(p) per class; the loss is minus their sum."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(actuals, dtype=np.float64) * LOGS[log](np.asarray(probabilities, dtype=np.float64))


def categorical_loss(probabilities, actuals, log: str) -> float:
    return -_sum(categorical_terms(probabilities, actuals, log))


def binary_two_terms(is_positive, predicted, log: str) -> np.ndarray:
    """-y*log(p) - (1-y)*log(1-p) for each item."""
    y = np.asarray(is_positive, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -y * LOGS[log](p) - (1 - y) * LOGS[log](1 - p)


def binary_if_form(is_positive, predicted, log: str) -> np.ndarray:
    """-log(p) for a positive item, -log(1-p) for a negative one (y must be 0 or 1)."""
    y = np.asarray(is_positive, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(y == 1, LOGS[log](p), LOGS[log](1 - p))


def total(losses) -> float:
    """The batch's loss: the sum of the items' losses (a positive number)."""
    return _sum(losses)


def mean(losses) -> float:
    """PyTorch's default reduction: the mean of the items' losses."""
    return _sum(losses) / len(losses)


def _sum(values) -> float:
    """Left to right, as a spreadsheet's SUM adds."""
    result = 0.0
    for value in np.asarray(values, dtype=np.float64).ravel():
        result += float(value)
    return result
