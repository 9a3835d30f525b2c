"""fastai's optimiser in NumPy, one idea per function, and the course's variants built from them.

fastai (fastai/optimizer.py) builds every optimiser as a list of small callbacks run in
order on each parameter: *statistics* that update the optimiser's state (average_grad,
average_sqr_grad, step_stat) and one *stepper* that moves the parameter (sgd_step,
momentum_step, rms_prop_step, adam_step). The same shape here, without mutation: each
piece takes the parameter `p`, its gradient `grad` and the state and hyper-parameters by
name, and returns what it changes as a dict (`{"grad_avg": ...}`, `{"p": ...}`).
Everything works elementwise, so `p` may hold several weights at once (b and a).

The course workbook's sheets are the same pieces in other orders and settings:
momentum is average_grad with dampening then momentum_step; its RMSProp takes the step
*before* updating the squared average (so it divides by the previous row's average) with
no epsilon; its Adam has no bias correction and no epsilon.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np


# --- statistics: the optimiser's state --------------------------------------------------

def damping(mom: float, dampening: bool) -> float:
    """The weight of the new value in a running average: 1-mom (an exponential moving
    average) with dampening, else 1 (the classical momentum sum)."""
    return 1 - mom if dampening else 1.0


def average_grad(p, grad, mom, dampening=False, grad_avg=None, **_):
    """Running average of the gradients: grad_avg*mom + damp*grad, starting from 0."""
    if grad_avg is None:
        grad_avg = np.zeros_like(np.asarray(grad, dtype=np.float64))
    return {"grad_avg": grad_avg * mom + damping(mom, dampening) * grad}


def average_sqr_grad(p, grad, sqr_mom, dampening=True, sqr_avg=None, **_):
    """Running average of the squared gradients: sqr_avg*sqr_mom + damp*grad^2, from 0."""
    if sqr_avg is None:
        sqr_avg = np.zeros_like(np.asarray(grad, dtype=np.float64))
    return {"sqr_avg": sqr_avg * sqr_mom + damping(sqr_mom, dampening) * (grad * grad)}


def step_stat(p, grad, step=0, **_):
    """The number of steps taken, counting this one."""
    return {"step": step + 1}


# --- steppers: the parameter update --------------------------------------------------

def sgd_step(p, grad, lr, **_):
    """p - lr*grad."""
    return {"p": p - lr * grad}


def momentum_step(p, grad, lr, grad_avg, **_):
    """p - lr*grad_avg."""
    return {"p": p - lr * grad_avg}


def rms_prop_step(p, grad, lr, sqr_avg, eps=1e-8, grad_avg=None, **_):
    """p - lr*(grad_avg, or grad without one) / (sqrt(sqr_avg) + eps)."""
    numerator = grad if grad_avg is None else grad_avg
    return {"p": p - lr * (numerator / (np.sqrt(sqr_avg) + eps))}


def debias(mom, damp, step):
    """What a damped running average started at 0 falls short by after `step` steps:
    damp*(1 - mom^step)/(1 - mom); dividing by it corrects the bias towards 0."""
    return damp * (1 - mom ** step) / (1 - mom)


def adam_step(p, grad, lr, mom, step, sqr_mom, grad_avg, sqr_avg, eps=1e-5, **_):
    """Adam's update with bias correction of both averages."""
    debias1 = debias(mom, 1 - mom, step)
    debias2 = debias(sqr_mom, 1 - sqr_mom, step)
    return {"p": p - (lr / debias1) * (grad_avg / (np.sqrt(sqr_avg / debias2) + eps))}


# --- optimisers: callbacks run in order ---------------------------------------------

@dataclass(frozen=True)
class Optimizer:
    """Callbacks run in order on each step, with default hyper-parameters."""
    callbacks: tuple
    hypers: dict = field(default_factory=dict)

    def step(self, p, grad, state: dict, **hypers):
        """One step: (new p, new state). `hypers` override the defaults (an annealed lr)."""
        settings = {**self.hypers, **hypers}
        state = dict(state)
        for callback in self.callbacks:
            changes = dict(callback(p=p, grad=grad, **state, **settings))
            p = changes.pop("p", p)
            state.update(changes)
        return p, state

    def float_step(self):
        """`step` for one weight on plain floats: (p, grad, state, lr) -> (new p, new
        state), or None when a callback has no plain-float twin (`FLOAT_TWINS`).

        The same operations in the same order as `step`, so the same bits; without
        `step`'s dicts and keywords per callback (about 20 us a weight a row: seconds in a
        run of 40,000 rows). Where Python floats raise (x/0, the root of a negative,
        an overflowing power) and NumPy gives inf or nan, it raises too
        (ArithmeticError, ValueError, TypeError; LookupError where a state the step
        needs is missing): call `step` then."""
        settings_now = (self.callbacks, tuple(self.hypers.items()))
        made = self.__dict__.get("_float_step")   # made once per optimiser (run_epochs asks per epoch)
        if made is not None and made[0] == settings_now:
            return made[1]
        stepper = self._make_float_step()
        self.__dict__["_float_step"] = (settings_now, stepper)
        return stepper

    def _make_float_step(self):
        pieces = []
        for callback in self.callbacks:
            function = getattr(callback, "func", callback)
            if function not in FLOAT_TWINS:
                return None
            # a callback's settings as `step` resolves them: its defaults, the partial's
            # keywords, the optimiser's hyper-parameters (lr comes with each call)
            settings = {name: parameter.default for name, parameter in inspect.signature(function).parameters.items()
                        if parameter.default is not parameter.empty}
            settings.update(getattr(callback, "keywords", {}))
            settings.update((name, value) for name, value in self.hypers.items() if name != "lr")
            try:
                pieces.append(FLOAT_TWINS[function](settings))
            except (KeyError, TypeError, ArithmeticError):   # a setting missing or odd: `step` says how
                return None

        def float_step(p, grad, state: dict, lr):
            state = dict(state)
            for piece in pieces:
                p = piece(p, grad, state, lr)
            return p, state
        return float_step


# --- the callbacks' twins on plain floats (Optimizer.float_step) ----------------------
# Each takes the callback's resolved settings and returns (p, grad, state, lr) -> new p,
# updating `state` in place, with exactly the arithmetic of the callback above.

def _average_grad_twin(settings: dict):
    mom, damp = settings["mom"], damping(settings["mom"], settings["dampening"])

    def twin(p, grad, state, lr):
        grad_avg = state.get("grad_avg")
        state["grad_avg"] = (0.0 if grad_avg is None else grad_avg) * mom + damp * grad
        return p
    return twin


def _average_sqr_grad_twin(settings: dict):
    sqr_mom, damp = settings["sqr_mom"], damping(settings["sqr_mom"], settings["dampening"])

    def twin(p, grad, state, lr):
        sqr_avg = state.get("sqr_avg")
        state["sqr_avg"] = (0.0 if sqr_avg is None else sqr_avg) * sqr_mom + damp * (grad * grad)
        return p
    return twin


def _step_stat_twin(settings: dict):
    def twin(p, grad, state, lr):
        state["step"] = state.get("step", settings["step"]) + 1
        return p
    return twin


def _sgd_step_twin(settings: dict):
    def twin(p, grad, state, lr):
        return p - lr * grad
    return twin


def _momentum_step_twin(settings: dict):
    def twin(p, grad, state, lr):
        return p - lr * state["grad_avg"]
    return twin


def _rms_prop_step_twin(settings: dict):
    eps = settings["eps"]

    def twin(p, grad, state, lr):
        grad_avg = state.get("grad_avg")
        numerator = grad if grad_avg is None else grad_avg
        return p - lr * (numerator / (math.sqrt(state["sqr_avg"]) + eps))
    return twin


def _adam_step_twin(settings: dict):
    mom, sqr_mom, eps = settings["mom"], settings["sqr_mom"], settings["eps"]

    def twin(p, grad, state, lr):
        step = state["step"]
        debias1 = debias(mom, 1 - mom, step)
        debias2 = debias(sqr_mom, 1 - sqr_mom, step)
        return p - (lr / debias1) * (state["grad_avg"] / (math.sqrt(state["sqr_avg"] / debias2) + eps))
    return twin


FLOAT_TWINS = {average_grad: _average_grad_twin, average_sqr_grad: _average_sqr_grad_twin,
               step_stat: _step_stat_twin, sgd_step: _sgd_step_twin, momentum_step: _momentum_step_twin,
               rms_prop_step: _rms_prop_step_twin, adam_step: _adam_step_twin}


def SGD(lr, mom=0.0, dampening=False) -> Optimizer:
    """fastai's SGD: plain steps, or momentum when mom > 0 (no dampening by default)."""
    if mom == 0:
        return Optimizer((sgd_step,), {"lr": lr})
    return Optimizer((partial(average_grad, dampening=dampening), momentum_step), {"lr": lr, "mom": mom})


def RMSProp(lr, sqr_mom=0.99, mom=0.0, eps=1e-8, dampening=True) -> Optimizer:
    """fastai's RMSProp: update the squared average, then divide by its root (+ eps)."""
    stats = (partial(average_sqr_grad, dampening=dampening),)
    if mom != 0:
        stats = (average_grad,) + stats
    return Optimizer(stats + (rms_prop_step,), {"lr": lr, "mom": mom, "sqr_mom": sqr_mom, "eps": eps})


def Adam(lr, mom=0.9, sqr_mom=0.99, eps=1e-5, debiased=True) -> Optimizer:
    """fastai's Adam: damped average of gradients and of their squares, step count, and
    the step with bias correction (`debiased=False`: without it, an RMSProp step on the
    average gradient)."""
    stepper = adam_step if debiased else rms_prop_step
    return Optimizer((partial(average_grad, dampening=True), average_sqr_grad, step_stat, stepper),
                     {"lr": lr, "mom": mom, "sqr_mom": sqr_mom, "eps": eps})


# The course workbook's optimisers (sheets momentum, rmsprop, adam, adam_ann).

def course_momentum(lr, beta) -> Optimizer:
    """momentum sheet: J4 = J3*beta + (1-beta)*de/db; new b = b - J4*lr."""
    return SGD(lr, mom=beta, dampening=True)


def course_rmsprop(lr, beta) -> Optimizer:
    """rmsprop sheet: new b = b - de/db*lr/SQRT(J3), the *previous* row's average, no
    epsilon; then J4 = J3*beta + (1-beta)*de/db^2. The step runs before the statistic."""
    return Optimizer((partial(rms_prop_step, eps=0.0), partial(average_sqr_grad, dampening=True)),
                     {"lr": lr, "sqr_mom": beta})


def course_adam(lr, beta1, beta2) -> Optimizer:
    """adam and adam_ann sheets: damped averages, new b = b - J4*lr/SQRT(L4): no bias
    correction, no epsilon."""
    return Adam(lr, mom=beta1, sqr_mom=beta2, eps=0.0, debiased=False)


# --- the course's learning-rate annealing (adam_ann), one rule per function -----------

def gradient_size(sqr_avg) -> float:
    """avg_grad2: the sum over the weights of the root of each squared-gradient average."""
    return float(np.sum(np.sqrt(sqr_avg)))


def annealed_lr(lr, gradrat, limit=2.0, divisor=4.0):
    """The macro's rule after each epoch: divide lr by `divisor` when gradrat > limit."""
    return lr / divisor if gradrat > limit else lr


def lowest_so_far(prev_grad2, avg_grad2):
    """prev_grad2 follows avg_grad2 down, never up."""
    return avg_grad2 if avg_grad2 < prev_grad2 else prev_grad2
