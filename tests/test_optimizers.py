"""The optimiser reference: fastai's own tests of its pieces, the course's sheets as Excel
saved them, the annealing rule, and the reference's independence from the builders."""

import ast
import math
from pathlib import Path

import numpy as np
import openpyxl
import pytest

from tests.conftest import COURSE_FIXTURE, COURSE_X
from xlgen.reference import optimizers as opt
from xlgen.reference.data import line
from xlgen.reference.optimizer_runs import run, run_annealed, run_epochs

Y = line(COURSE_X, 30, 2)
GRAD = np.array([4.0, 5.0, 6.0])


# --- fastai's tests (nbs/12_optimizer.ipynb), on the NumPy pieces ---------------------

def test_average_grad_as_fastai_tests_it():
    state = opt.average_grad(None, GRAD, mom=0.9)
    np.testing.assert_array_equal(state["grad_avg"], GRAD)
    state = opt.average_grad(None, GRAD, mom=0.9, **state)
    np.testing.assert_allclose(state["grad_avg"], GRAD * 1.9, rtol=1e-15)
    state = opt.average_grad(None, GRAD, mom=0.9, dampening=True)
    np.testing.assert_allclose(state["grad_avg"], 0.1 * GRAD, rtol=1e-15)
    state = opt.average_grad(None, GRAD, mom=0.9, dampening=True, **state)
    np.testing.assert_allclose(state["grad_avg"], (0.1 * 0.9 + 0.1) * GRAD, atol=1e-5)


def test_average_sqr_grad_as_fastai_tests_it():
    state = opt.average_sqr_grad(None, GRAD, sqr_mom=0.99, dampening=False)
    np.testing.assert_array_equal(state["sqr_avg"], GRAD ** 2)
    state = opt.average_sqr_grad(None, GRAD, sqr_mom=0.99, dampening=False, **state)
    np.testing.assert_allclose(state["sqr_avg"], GRAD ** 2 * 1.99, rtol=1e-15)
    state = opt.average_sqr_grad(None, GRAD, sqr_mom=0.99)
    np.testing.assert_allclose(state["sqr_avg"], 0.01 * GRAD ** 2, atol=1e-5)
    state = opt.average_sqr_grad(None, GRAD, sqr_mom=0.99, **state)
    np.testing.assert_allclose(state["sqr_avg"], (0.01 * 0.99 + 0.01) * GRAD ** 2, atol=1e-5)


def test_steppers_and_step_count():
    assert opt.sgd_step(1.0, 0.1, lr=1.0)["p"] == 0.9
    assert opt.momentum_step(1.0, None, lr=0.1, grad_avg=0.5)["p"] == pytest.approx(0.95)
    state = {}
    for _ in range(6):
        state = opt.step_stat(None, None, **state)
    assert state == {"step": 6}
    assert opt.debias(0.9, 0.1, 1) == pytest.approx(0.1)
    assert opt.debias(0.9, 1 - 0.9, 3) == pytest.approx(1 - 0.9 ** 3)


def tst_params():
    """fastai's tst_params(): p = 0, 1, 2, 3 with grad p/10."""
    p = np.arange(4, dtype=np.float64)
    return p, p / 10


def test_sgd_with_momentum_as_fastai_tests_it():
    p, g = tst_params()
    sgd = opt.SGD(lr=0.1, mom=0.9)
    p, state = sgd.step(p, g, {})
    np.testing.assert_allclose(p, np.arange(4) * 0.99, atol=1e-5)
    p, state = sgd.step(p, g, state)
    np.testing.assert_allclose(p, np.arange(4) * (1 - 0.1 * (0.1 + 0.1 * 1.9)), atol=1e-5)
    np.testing.assert_allclose(state["grad_avg"], np.arange(4) * 0.19, atol=1e-5)


def test_rmsprop_as_fastai_tests_it():
    for mom, numerator in ((0.0, 0.1), (0.9, 0.1 + 0.9 * 0.1)):
        p, g = np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3])
        rms = opt.RMSProp(lr=0.1, mom=mom)
        p, state = rms.step(p, g, {})
        np.testing.assert_allclose(p, [0.0, 1.0, 2.0], atol=1e-5)
        p, state = rms.step(p, g, state)
        step = -0.1 * numerator / (math.sqrt((0.01 * 0.99 + 0.01) * 0.1 ** 2) + 1e-8)
        np.testing.assert_allclose(p, [step, 1 + step, 2 + step], atol=1e-5)


def test_adam_as_fastai_tests_it():
    p, g = np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3])
    adam = opt.Adam(lr=0.1)
    p, state = adam.step(p, g, {})
    step = -0.1 * 0.1 / (math.sqrt(0.1 ** 2) + 1e-8)
    np.testing.assert_allclose(p, [1 + step, 2 + step, 3 + step], atol=1e-5)
    p, state = adam.step(p, g, state)
    np.testing.assert_allclose(p, [1 + 2 * step, 2 + 2 * step, 3 + 2 * step], atol=1e-3)
    assert state["step"] == 2


# --- the course's variants, composed from the pieces ---------------------------------

def test_course_variants_are_compositions():
    rms = opt.course_rmsprop(lr=0.02, beta=0.9)
    # the step first, with the average it is given (the previous row's), then the update
    p, state = rms.step(np.array([1.0]), np.array([3.0]), {"sqr_avg": np.array([4.0])})
    assert p[0] == pytest.approx(1 - 3 * 0.02 / 2)
    assert state["sqr_avg"][0] == pytest.approx(4 * 0.9 + (1 - 0.9) * 9)
    adam = opt.course_adam(lr=0.1, beta1=0.9, beta2=0.9)
    p, state = adam.step(np.array([1.0]), np.array([2.0]), {})
    assert p[0] == pytest.approx(1 - 0.1 * (0.1 * 2) / math.sqrt(0.1 * 4))     # no debias, no eps


def saved(sheet, cell):
    return COURSE_SHEETS[sheet][cell].value


COURSE_SHEETS = openpyxl.load_workbook(COURSE_FIXTURE, data_only=True)


def course_run(sheet, optimizer, state):
    start = {"b": saved(sheet, "C1"), "a": saved(sheet, "C2")}
    return run(COURSE_X, Y, optimizer, start, state, 1, saved(sheet, "D2"))


def column(sheet, letter):
    return np.array([saved(sheet, f"{letter}{row}") for row in range(4, 33)])


@pytest.mark.parametrize("sheet", ["momentum", "rmsprop", "adam", "adam_ann"])
def test_reference_reproduces_the_course_file_exactly(sheet):
    """Every row of each optimiser sheet as Excel saved it, from its inputs and saved state."""
    lr, beta = saved(sheet, "D2"), saved(sheet, "J1")
    pair = lambda a, b: np.array([saved(sheet, a), saved(sheet, b)])  # noqa: E731
    if sheet == "momentum":
        trace = course_run(sheet, opt.course_momentum(lr, beta), {"grad_avg": pair("J33", "K33")})
        stats = {"J": trace.state["grad_avg"]["b"], "K": trace.state["grad_avg"]["a"], "L": trace.loss}
    elif sheet == "rmsprop":
        trace = course_run(sheet, opt.course_rmsprop(lr, beta), {"sqr_avg": pair("J33", "K33")})
        stats = {"J": trace.state["sqr_avg"]["b"], "K": trace.state["sqr_avg"]["a"]}
    else:
        trace = course_run(sheet, opt.course_adam(lr, beta, saved(sheet, "L1")),
                           {"grad_avg": pair("J33", "K33"), "sqr_avg": pair("L33", "M33")})
        stats = {"J": trace.state["grad_avg"]["b"], "K": trace.state["grad_avg"]["a"],
                 "L": trace.state["sqr_avg"]["b"], "M": trace.state["sqr_avg"]["a"]}
    expected = {"E": trace.prediction, "F": trace.gradient["b"], "G": trace.gradient["a"],
                "H": trace.after["b"], "I": trace.after["a"], **stats}
    for letter, values in expected.items():
        np.testing.assert_array_equal(values, column(sheet, letter), err_msg=f"{sheet}!{letter}")


def test_annealing_rule_pieces():
    assert opt.annealed_lr(1.0, 2.5) == 0.25
    assert opt.annealed_lr(1.0, 2.0) == 1.0          # "passes 2": strictly greater
    assert opt.annealed_lr(1.0, 3.0, limit=2, divisor=10) == 0.1
    assert opt.lowest_so_far(10.0, 12.0) == 10.0 and opt.lowest_so_far(10.0, 8.0) == 8.0
    assert opt.gradient_size(np.array([4.0, 9.0])) == 5.0
    # the course's own figure: N33 = SQRT(L33)+SQRT(M33), N34 = N33/N3
    size = opt.gradient_size(np.array([saved("adam_ann", "L33"), saved("adam_ann", "M33")]))
    assert size == pytest.approx(saved("adam_ann", "N33"), rel=1e-15)
    assert size / saved("adam_ann", "N3") == pytest.approx(saved("adam_ann", "N34"), rel=1e-15)


def test_annealed_run_divides_lr_once_the_ratio_passes_the_limit():
    zeros = np.zeros(2)
    trace, annealing = run_annealed(COURSE_X, Y, opt.course_adam(1.0, 0.9, 0.95), {"a": 1, "b": 1},
                                    {"grad_avg": zeros, "sqr_avg": zeros}, 5, 1.0, prev_grad2=3000)
    assert annealing.gradrat[0] > 2 and list(annealing.lr) == [1.0, 0.25, 0.25, 0.25, 0.25]
    assert np.all(annealing.prev_grad2[1:] <= annealing.prev_grad2[:-1])
    assert annealing.prev_grad2[1] == annealing.prev_grad2[0]          # 3000 < first avg_grad2: kept
    np.testing.assert_allclose(annealing.gradrat, annealing.avg_grad2 / annealing.prev_grad2)
    assert trace.rmse[-1] < trace.rmse[0] / 4
    # each epoch continues from the last row of the one before, state and weights
    last = 28
    assert trace.before["b"][last + 1] == trace.after["b"][last]
    sqr = trace.state["sqr_avg"]["b"]
    assert annealing.avg_grad2[0] == pytest.approx(math.sqrt(sqr[last]) + math.sqrt(trace.state["sqr_avg"]["a"][last]))


def test_reference_modules_never_import_builders_or_formulas():
    folder = Path(opt.__file__).parent
    for name in ("optimizers.py", "optimizer_runs.py", "fastai_tests.py", "smoothing.py"):
        tree = ast.parse((folder / name).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not {m for m in imported if m and (m.startswith("xlgen.sheets") or m == "xlgen.formula")}, name


# --- the plain-float twin of a step (Optimizer.float_step) -----------------------------

FLOAT_OPTIMIZERS = [opt.SGD(0.01), opt.SGD(0.01, mom=0.9), opt.SGD(0.01, mom=0.9, dampening=True),
                    opt.RMSProp(0.01), opt.RMSProp(0.01, mom=0.9), opt.Adam(0.01), opt.Adam(0.01, debiased=False),
                    opt.Adam(0.01, mom=0.8, sqr_mom=0.95, eps=1e-7), opt.course_momentum(0.01, 0.9),
                    opt.course_rmsprop(0.01, 0.9), opt.course_adam(0.01, 0.9, 0.99)]


@pytest.mark.parametrize("optimizer", FLOAT_OPTIMIZERS, ids=lambda o: "+".join(
    getattr(c, "func", c).__name__ for c in o.callbacks) + repr(sorted(o.hypers.items())))
def test_float_step_gives_the_same_bits_as_step(optimizer):
    """The twin on Python floats does the step's arithmetic in its order: every result
    bit for bit, over many steps, from states with and without averages yet; where
    Python floats raise and NumPy gives inf or nan, it raises (its caller falls back)."""
    float_step = optimizer.float_step()
    assert float_step is not None
    rng = np.random.default_rng(7)
    for start in ({"step": 0.0}, {"grad_avg": 0.5, "sqr_avg": 0.25, "step": 3.0}):
        state = dict(start)
        p = 1.5
        for i in range(300):
            grad = float(rng.normal() * 10.0 ** rng.integers(-8, 8))
            lr = float(rng.choice([0.01, 1e-4, 3.0]))
            with np.errstate(all="ignore"):
                try:
                    expected_p, expected_state = optimizer.step(p, grad, state, lr=lr)
                except TypeError:   # a state the stepper needs is missing: so in the twin
                    with pytest.raises(LookupError):
                        float_step(p, grad, state, lr)
                    break
            try:
                got_p, got_state = float_step(p, grad, state, lr)
            except (ArithmeticError, ValueError, TypeError):
                assert not all(math.isfinite(float(v)) for v in (expected_p, *expected_state.values()))
                break
            assert float(got_p).hex() == float(expected_p).hex()
            assert got_state.keys() == expected_state.keys()
            for key in got_state:
                assert float(got_state[key]).hex() == float(expected_state[key]).hex(), key
            p, state = float(got_p), {key: float(value) for key, value in got_state.items()}


def test_float_step_raises_where_numpy_gives_inf():
    """The course's rmsprop divides by the root of the previous average, with no eps: from
    a zero average NumPy's step is inf; the twin raises so its caller takes `step`."""
    optimizer = opt.course_rmsprop(0.01, 0.9)
    with pytest.raises(ZeroDivisionError):
        optimizer.float_step()(1.0, 2.0, {"sqr_avg": 0.0}, 0.01)
    with np.errstate(all="ignore"):
        p, _ = optimizer.step(1.0, 2.0, {"sqr_avg": 0.0}, lr=0.01)
    assert np.isinf(p)
    with pytest.raises(ValueError):
        optimizer.float_step()(1.0, 2.0, {"sqr_avg": -1.0}, 0.01)


def test_float_step_is_none_for_a_callback_without_a_twin():
    assert opt.Optimizer((lambda p, grad, **_: {"p": p},), {"lr": 0.1}).float_step() is None


@pytest.mark.parametrize("optimizer", FLOAT_OPTIMIZERS[:8] + [opt.course_rmsprop(0.5, 0.9), opt.course_adam(0.5, 0.9, 0.99),
                                                            opt.Adam(0.05, eps=1e-5)])
def test_runs_on_floats_give_the_same_trace_as_runs_on_arrays(optimizer, monkeypatch):
    """run_epochs steps a weight at a time on floats where it can; every number of the
    trace is the one the array step gives (the course's data, 30 epochs, from saved-like
    states and from none; a run that blows up too)."""
    states = [{"grad_avg": np.array([0.3, -0.2]), "sqr_avg": np.array([0.5, 0.7]), "step": np.float64(2)},
              {"sqr_avg": np.array([0.0, 0.0])}, {}]
    for state in states:
        for lrs in ([0.01] * 30, [1.5] * 30):
            def trace():
                try:
                    return run_epochs(COURSE_X, Y, optimizer, {"a": 1.0, "b": 1.0}, dict(state), lrs)
                except TypeError:   # a stepper whose state is missing: so on both paths
                    return None
            fast = trace()
            with monkeypatch.context() as patch:
                patch.setattr(opt.Optimizer, "float_step", lambda self: None)
                slow = trace()
            assert (fast is None) == (slow is None)
            if fast is None:
                continue
            for name in ("before", "gradient", "after"):
                for w in ("a", "b"):
                    np.testing.assert_array_equal(getattr(fast, name)[w], getattr(slow, name)[w])
            np.testing.assert_array_equal(fast.loss, slow.loss)
            np.testing.assert_array_equal(fast.rmse, slow.rmse)
            assert fast.state.keys() == slow.state.keys()
            for key in fast.state:
                if isinstance(fast.state[key], dict):
                    for w in ("a", "b"):
                        np.testing.assert_array_equal(fast.state[key][w], slow.state[key][w])
                else:
                    np.testing.assert_array_equal(fast.state[key], slow.state[key])
            for mine, theirs in zip(fast.epoch_state, slow.epoch_state):
                assert mine.keys() == theirs.keys()
                for key in mine:
                    np.testing.assert_array_equal(mine[key], theirs[key])
