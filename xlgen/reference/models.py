"""Models as a prediction and a squared-error loss, with two ways to get gradients.

`analytic` is calculus; `finite` is the forum's estimate: (loss with the weight moved by
a small step, minus the loss) over the step. Both are computed for every row, because a
sheet shows both even when only one drives the update.
"""

from __future__ import annotations

import math

import numpy as np


class Linear:
    """y = a*x + b: the course's model."""

    weights = ("a", "b")

    @staticmethod
    def predict(w: dict, x):
        return w["b"] + w["a"] * x

    @staticmethod
    def gradient(w: dict, x, y) -> dict:
        residual2 = 2 * (Linear.predict(w, x) - y)  # d(err^2)/d(prediction)
        return {"b": residual2, "a": residual2 * x}


class Collapse:
    """y = c*(a*x + b) + d: two linear neurons stacked with nothing between them (the
    forum's "2-neuron collapse"); mathematically still a line, c*a*x + (c*b + d)."""

    weights = ("a", "b", "c", "d")

    @staticmethod
    def hidden(w: dict, x):
        return w["a"] * x + w["b"]

    @staticmethod
    def predict(w: dict, x):
        return w["c"] * Collapse.hidden(w, x) + w["d"]

    @staticmethod
    def gradient(w: dict, x, y) -> dict:
        residual2 = 2 * (Collapse.predict(w, x) - y)
        through = residual2 * w["c"]            # d(err^2)/d(hidden)
        return {"a": through * x, "b": through, "c": residual2 * Collapse.hidden(w, x), "d": residual2}


class Relu:
    """y = c*max(a*x + b, 0) + d: the forum's "ReLU sandwich". Where a*x + b < 0 the
    ReLU is flat, so a, b and c get a zero derivative (a dead ReLU for that point).

    Non-finite numbers stand for Excel's #NUM!: max(#NUM!, 0) is #NUM!, not 0, and a
    flat ReLU gives a zero derivative even when the rest of the chain overflowed."""

    weights = ("a", "b", "c", "d")

    @staticmethod
    def hidden(w: dict, x):
        z = w["a"] * x + w["b"]
        return np.where(np.isfinite(z), np.maximum(z, 0.0), np.nan)[()]

    @staticmethod
    def predict(w: dict, x):
        return w["c"] * Relu.hidden(w, x) + w["d"]

    @staticmethod
    def gradient(w: dict, x, y) -> dict:
        residual2 = 2 * (Relu.predict(w, x) - y)
        z = w["a"] * x + w["b"]
        # the slope of max(z, 0) is 1 above 0 and 0 elsewhere
        through = np.where(z > 0, residual2 * w["c"], 0.0)
        through = np.where(np.isfinite(z), through, np.nan)[()]   # d(err^2)/d(hidden)
        return {"a": through * x, "b": through, "c": residual2 * Relu.hidden(w, x), "d": residual2}


MODELS = {"linear": Linear, "collapse": Collapse, "relu": Relu}


def loss(model, w: dict, x, y):
    return square(y - model.predict(w, x))


def square(value):
    """value ** 2 as NumPy squares one float: with C's pow(value, 2), which rounds some
    squares differently from value * value (NumPy's ** 2 on an array). An array is squared
    element by element with pow too, so rows computed together have the bits of each row
    computed alone."""
    if not isinstance(value, np.ndarray):
        return value ** 2
    return np.fromiter(map(_pow_2, value.ravel().tolist()), dtype=np.float64, count=value.size).reshape(value.shape)


def _pow_2(value: float) -> float:
    try:
        return math.pow(value, 2.0)   # C's pow, as np.float64 ** 2
    except OverflowError:             # where NumPy gives inf
        return math.inf


def bumped_losses(model, w: dict, x, y, step: float) -> dict:
    """The loss with each weight alone moved up by `step`."""
    return {name: loss(model, {**w, name: w[name] + step}, x, y) for name in model.weights}


def finite_gradient(base_loss, bumped: dict, step: float) -> dict:
    return {name: (bumped_loss - base_loss) / step for name, bumped_loss in bumped.items()}
