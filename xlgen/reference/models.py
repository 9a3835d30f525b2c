"""Models as a prediction and a squared-error loss, with two ways to get gradients.

`analytic` is calculus; `finite` is the forum's estimate: (loss with the weight moved by
a small step, minus the loss) over the step. Both are computed for every row, because a
sheet shows both even when only one drives the update.
"""

from __future__ import annotations

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


MODELS = {"linear": Linear}


def loss(model, w: dict, x, y):
    return (y - model.predict(w, x)) ** 2


def bumped_losses(model, w: dict, x, y, step: float) -> dict:
    """The loss with each weight alone moved up by `step`."""
    return {name: loss(model, {**w, name: w[name] + step}, x, y) for name in model.weights}


def finite_gradient(base_loss, bumped: dict, step: float) -> dict:
    return {name: (bumped_loss - base_loss) / step for name, bumped_loss in bumped.items()}
