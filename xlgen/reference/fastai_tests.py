"""fastai's tests of its optimiser pieces (nbs/12_optimizer.ipynb): the scenarios and what
each asserts.

p = tst_param([1,2,3], [4,5,6]); state = {}; state = average_grad(p, mom=0.9, **state)
twice: the first call gives grad, the second 1.9*grad; with dampening 0.1*grad, then
(0.1*0.9+0.1)*grad. average_sqr_grad (sqr_mom 0.99) likewise with grad^2, 1.99*grad^2,
0.01*grad^2, (0.01*0.99+0.01)*grad^2. sgd_step(p=1, grad=0.1, lr=1) gives 0.9. Adam
(lr 0.1, wd 0) on p=[1,2,3], grad=[0.1,0.2,0.3]: each step moves every p by
-0.1*0.1/(sqrt(0.1^2)+1e-8), checked to 1e-5 after one step and 1e-3 after two.
"""

from __future__ import annotations

import math

from xlgen.reference.optimizers import Adam, average_grad, average_sqr_grad, sgd_step

EXPECTED_AVERAGE_GRAD = {          # test name -> fastai's expected value for gradient g
    "first call": lambda g: g,
    "second call": lambda g: g * 1.9,
    "first call, dampening": lambda g: 0.1 * g,
    "second call, dampening": lambda g: (0.1 * 0.9 + 0.1) * g,
}
EXPECTED_AVERAGE_SQR_GRAD = {
    "first call": lambda g: g ** 2,
    "second call": lambda g: g ** 2 * 1.99,
    "first call, dampening": lambda g: 0.01 * g ** 2,
    "second call, dampening": lambda g: (0.01 * 0.99 + 0.01) * g ** 2,
}
SGD_EXPECTED = 0.9
ADAM_STEP = -0.1 * 0.1 / (math.sqrt(0.1 ** 2) + 1e-8)   # fastai's `step` in its Adam test


def calls_of(name: str) -> int:
    """How many calls (steps) a test makes before it asserts: 'second ...' makes two."""
    return 2 if name.strip().lower().startswith("second") else 1


def running_averages(kind: str, grad: float, beta: float, dampening: bool, start: float, calls: int) -> list:
    """The average after each of `calls` calls with the same gradient, from `start`."""
    function, key, beta_name = ((average_grad, "grad_avg", "mom") if kind == "grad_avg"
                                else (average_sqr_grad, "sqr_avg", "sqr_mom"))
    values, value = [], start
    for _ in range(calls):
        value = function(None, grad, **{beta_name: beta}, dampening=dampening, **{key: value})[key]
        values.append(value)
    return values


def sgd(p: float, grad: float, lr: float) -> float:
    return sgd_step(p, grad, lr)["p"]


def adam_steps(p: float, grad: float, lr: float, mom: float, sqr_mom: float, eps: float, steps: int) -> list:
    """(p, grad_avg, sqr_avg, step) after each of `steps` Adam steps from an empty state."""
    optimizer, state, out = Adam(lr, mom=mom, sqr_mom=sqr_mom, eps=eps), {}, []
    for _ in range(steps):
        p, state = optimizer.step(p, grad, state)
        out.append((p, state["grad_avg"], state["sqr_avg"], state["step"]))
    return out


def adam_expected(p0: float, steps: int) -> float:
    return p0 + steps * ADAM_STEP
