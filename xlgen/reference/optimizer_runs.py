"""An optimiser on the course's linear model, one data point per step, as its sheets run it.

Each row predicts with the weights left by the previous row, takes the analytic
gradient of the squared error and lets the optimiser move the weights; the optimiser's
state (running averages, step count) carries from row to row and from epoch to epoch,
exactly as the course's macro carried it by copying the last row into the top row.
Every quantity a sheet shows is recorded per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xlgen.reference.models import Linear, loss
from xlgen.reference.optimizers import Optimizer, annealed_lr, gradient_size, lowest_so_far
from xlgen.reference.sgd import rmse_per_epoch

WEIGHTS = ("b", "a")   # the order of the course's columns: de/db before de/da, new b before new a


@dataclass
class OptimizerTrace:
    """Per-row arrays (epochs back to back) and per-epoch figures."""
    before: dict                 # "b", "a" -> weights the row starts from
    prediction: np.ndarray
    loss: np.ndarray             # squared error
    gradient: dict               # "b", "a" -> analytic gradient
    state: dict                  # state key -> {"b": ..., "a": ...} (or an array for "step") after the row
    after: dict                  # "b", "a" -> weights after the row's step
    rmse: np.ndarray             # per epoch: sqrt of the SUM of squared errors
    lr: np.ndarray               # per epoch: the learning rate used
    epoch_state: list = field(default_factory=list)   # the state after each epoch's last row


def run_epochs(x, y, optimizer: Optimizer, initial: dict, state: dict, lrs) -> OptimizerTrace:
    """One epoch per entry of `lrs`, each at that learning rate. `initial` holds weights
    b and a; `state` the optimiser state entering the first row (arrays in b, a order)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    epochs = len(lrs)
    rows = len(x) * epochs
    p = np.array([initial[w] for w in WEIGHTS], dtype=np.float64)
    before, after, gradient = (np.empty((rows, 2)) for _ in range(3))
    prediction, losses = np.empty(rows), np.empty(rows)
    states: dict = {}
    epoch_state = []
    float_step = optimizer.float_step()
    with np.errstate(all="ignore"):   # overflow is an outcome to show, not a crash
        for row in range(rows):
            xi, yi = x[row % len(x)], y[row % len(x)]
            weights = dict(zip(WEIGHTS, p))
            gradients = Linear.gradient(weights, xi, yi)
            grad = np.array([gradients[w] for w in WEIGHTS])
            before[row], gradient[row] = p, grad
            prediction[row] = Linear.predict(weights, xi)
            losses[row] = loss(Linear, weights, xi, yi)
            p, state = _step(optimizer, float_step, p, grad, state, lrs[row // len(x)])
            after[row] = p
            for key, value in state.items():
                states.setdefault(key, np.empty((rows,) + np.shape(value)))[row] = value
            if row % len(x) == len(x) - 1:
                epoch_state.append({key: np.array(value, dtype=np.float64) for key, value in state.items()})
        rmse = rmse_per_epoch(losses, len(x))

    def split(array):
        return {w: array[:, i] for i, w in enumerate(WEIGHTS)}

    return OptimizerTrace(split(before), prediction, losses, split(gradient),
                          {key: split(value) if value.ndim == 2 else value for key, value in states.items()},
                          split(after), rmse, np.asarray(lrs, dtype=np.float64), epoch_state)


def _step(optimizer: Optimizer, float_step, p: np.ndarray, grad: np.ndarray, state: dict, lr):
    """`optimizer.step` of the weights `p`, a weight at a time on plain floats where it
    can (`Optimizer.float_step`: the same bits, without arrays of two; the optimiser works
    elementwise). The state's arrays hold a value per weight; its scalars (the step
    count) are shared. Where a float step raises, or adds a state the row did not have,
    `step` itself runs."""
    if float_step is not None:
        try:
            per_weight = {key for key, value in state.items() if np.ndim(value)}
            weights, states = [], []
            for i in range(len(p)):
                new_p, new_state = float_step(float(p[i]), float(grad[i]),
                                              {key: float(value[i]) if key in per_weight else value
                                               for key, value in state.items()}, lr)
                weights.append(new_p)
                states.append(new_state)
            if all(new_state.keys() == state.keys() for new_state in states):
                return (np.array(weights, dtype=np.float64),
                        {key: np.array([new_state[key] for new_state in states], dtype=np.float64)
                         if key in per_weight else states[0][key] for key in state})
        except (ArithmeticError, ValueError, TypeError, LookupError):   # where NumPy gives inf or nan
            pass
    return optimizer.step(p, grad, state, lr=lr)


def run(x, y, optimizer: Optimizer, initial: dict, state: dict, epochs: int, lr: float) -> OptimizerTrace:
    """`epochs` epochs at a fixed learning rate."""
    return run_epochs(x, y, optimizer, initial, state, [lr] * epochs)


@dataclass
class Annealing:
    """adam_ann's per-epoch figures: the rule's inputs and outcome."""
    lr: np.ndarray           # used by each epoch
    avg_grad2: np.ndarray    # after each epoch: sqrt of each squared average, summed
    prev_grad2: np.ndarray   # the value each epoch's gradrat divides by
    gradrat: np.ndarray


def run_annealed(x, y, optimizer: Optimizer, initial: dict, state: dict, epochs: int, lr: float,
                 prev_grad2: float, limit: float = 2.0, divisor: float = 4.0):
    """adam_ann: after each epoch, avg_grad2 = gradient_size(squared averages);
    gradrat = avg_grad2/prev_grad2; the next epoch's lr is annealed by the ratio and
    prev_grad2 follows avg_grad2 down. Returns (trace, Annealing)."""
    lrs, sizes, prevs, ratios = [], [], [], []
    weights, trace_parts = dict(initial), []
    for _ in range(epochs):
        part = run_epochs(x, y, optimizer, weights, state, [lr])
        trace_parts.append(part)
        state = part.epoch_state[-1]
        weights = {w: part.after[w][-1] for w in WEIGHTS}
        with np.errstate(all="ignore"):
            size = gradient_size(state["sqr_avg"])
            ratio = np.float64(size) / np.float64(prev_grad2)
        lrs.append(lr), sizes.append(size), prevs.append(prev_grad2), ratios.append(ratio)
        lr = annealed_lr(lr, ratio, limit, divisor)
        prev_grad2 = lowest_so_far(prev_grad2, size)
    return join(trace_parts), Annealing(*(np.array(v, dtype=np.float64) for v in (lrs, sizes, prevs, ratios)))


def join(parts: list) -> OptimizerTrace:
    """Epoch traces back to back."""
    def cat(dicts):
        return {w: np.concatenate([d[w] for d in dicts]) for w in WEIGHTS}
    state = {}
    for key, value in parts[0].state.items():
        state[key] = cat([p.state[key] for p in parts]) if isinstance(value, dict) \
            else np.concatenate([p.state[key] for p in parts])
    return OptimizerTrace(cat([p.before for p in parts]), np.concatenate([p.prediction for p in parts]),
                          np.concatenate([p.loss for p in parts]), cat([p.gradient for p in parts]), state,
                          cat([p.after for p in parts]), np.concatenate([p.rmse for p in parts]),
                          np.concatenate([p.lr for p in parts]), [s for p in parts for s in p.epoch_state])
