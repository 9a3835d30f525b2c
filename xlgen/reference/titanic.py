"""The course's Titanic models (2022 lesson 3) and full-batch gradient descent on them.

Features as the course's sheets make them: SibSp, Parch, Age/max(Age), log10(Fare+1),
Pclass 1 and 2 dummies, Embarked S and C dummies, Sex = male, and a column of ones.
The loss is the mean squared error of the prediction against Survived (0 or 1), as in
the course. Gradients are the textbook ones, computed from the passengers directly:
for the linear model 2/n * X^T (X w - y); for the net of two ReLU units summed,
each unit's weights get 2/n * X^T ((pred - y) * [its input > 0]).
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "titanic.csv"
RAW_COLUMNS = ("Survived", "Embarked", "Pclass", "Sex", "Age", "Fare", "SibSp", "Parch")
FEATURES = ("SibSp", "Parch", "Age_N", "log_Fare", "Pclass_1", "Pclass_2", "Embark_S", "Embark_C",
            "Male", "Ones")


@functools.lru_cache(maxsize=4)
def _read_passengers(path: Path) -> tuple:
    with open(path, encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return tuple(tuple(record[name] if name in ("Embarked", "Sex") else float(record[name]) for name in RAW_COLUMNS)
                 for record in csv.DictReader(lines))


def passengers(path: Path = DATA_FILE) -> list[tuple]:
    """The 712 passengers the course's sheets use, as (Survived, Embarked, Pclass, Sex, Age,
    Fare, SibSp, Parch) with numbers as floats."""
    return list(_read_passengers(Path(path)))


def as_number(value) -> float:
    """A blank cell counts as 0 in Excel arithmetic (the course's mmult sheet has one blank Fare)."""
    return 0.0 if value is None or value == "" else float(value)


def numbers(values) -> np.ndarray:
    """as_number of each value (a column of plain numbers at once)."""
    if set(map(type, values)) <= {float, int}:
        return np.array(values, dtype=np.float64)
    return np.array([as_number(value) for value in values], dtype=np.float64)


def features(columns) -> dict:
    """The course's feature columns (and the maxima they are scaled by) from the raw
    columns (RAW_COLUMNS order, each a value per passenger)."""
    raw = dict(zip(RAW_COLUMNS, columns))
    survived, pclass, age, fare = (numbers(raw[name]) for name in ("Survived", "Pclass", "Age", "Fare"))
    max_age, max_fare = age.max(), fare.max()
    columns = {
        "SibSp": numbers(raw["SibSp"]),
        "Parch": numbers(raw["Parch"]),
        "Age_N": age / max_age,
        "log_Fare": np.log10(fare + 1),
        "Pclass_1": (pclass == 1).astype(np.float64),
        "Pclass_2": (pclass == 2).astype(np.float64),
        "Embark_S": np.array([value == "S" for value in raw["Embarked"]], dtype=np.float64),
        "Embark_C": np.array([value == "C" for value in raw["Embarked"]], dtype=np.float64),
        "Male": np.array([value == "male" for value in raw["Sex"]], dtype=np.float64),
        "Ones": np.ones(len(survived)),
    }
    return {"y": survived, "max_age": max_age, "max_fare": max_fare, "columns": columns,
            "X": np.column_stack([columns[name] for name in FEATURES])}


def linear_predictions(X, weights) -> np.ndarray:
    return X @ np.asarray(weights, dtype=np.float64)


def linear_loss(X, y, weights) -> float:
    return float(np.mean((linear_predictions(X, weights) - y) ** 2))


def linear_gradient(X, y, weights) -> np.ndarray:
    return 2 * X.T @ (linear_predictions(X, weights) - y) / len(y)


def net_forward(X, weights1, weights2) -> dict:
    """The course's nnet: two linear units, IF(x<0,0,x) on each, their sum."""
    lin1, lin2 = X @ np.asarray(weights1), X @ np.asarray(weights2)
    relu1, relu2 = np.where(lin1 < 0, 0.0, lin1), np.where(lin2 < 0, 0.0, lin2)
    return {"lin1": lin1, "lin2": lin2, "relu1": relu1, "relu2": relu2, "preds": relu1 + relu2}


def gradient_descent_linear(X, y, initial, learning_rate: float, rows: int, steps: int | None = None) -> dict:
    """`rows` rows of weights: row 0 the initial ones, row k after k steps (steps past
    `steps` keep the weights). Each row's loss and gradient are at its weights."""
    steps = rows - 1 if steps is None else steps
    weights = np.asarray(initial, dtype=np.float64).copy()
    history = {"weights": [], "gradient": [], "loss": []}
    for row in range(rows):
        if row:
            if row <= steps:
                weights = weights - learning_rate * history["gradient"][-1]
        history["weights"].append(weights)
        history["gradient"].append(linear_gradient(X, y, weights))
        history["loss"].append(linear_loss(X, y, weights))
    return {key: np.array(value) for key, value in history.items()}


def gram(X, y) -> dict:
    """X^T X, X^T y and y^T y: with them the linear model's loss and gradient at any
    weights need no pass over the passengers."""
    return {"xtx": X.T @ X, "xty": X.T @ y, "yty": float(y @ y), "n": float(len(y))}


def minibatch_descent_net(X, y, initial1, initial2, learning_rate: float, batch: int, rows: int,
                          steps: int | None = None) -> dict:
    """Mini-batch gradient descent on the course's nnet: row k's weights take one step on
    passengers (k mod n/batch)*batch .. +batch-1 (in file order) from row k-1's; each
    row's batch values, batch loss and gradient are at its own weights and batch. Rows
    past `steps` keep their weights."""
    steps = rows - 1 if steps is None else steps
    n = len(y)
    w1, w2 = np.asarray(initial1, dtype=np.float64).copy(), np.asarray(initial2, dtype=np.float64).copy()
    out = {key: [] for key in ("w1", "w2", "g1", "g2", "loss", "start", "lin1", "lin2", "error", "d1", "d2")}
    for row in range(rows):
        if row and row <= steps:
            w1, w2 = w1 - learning_rate * out["g1"][-1], w2 - learning_rate * out["g2"][-1]
        start = (row * batch) % n
        xb, yb = X[start:start + batch], y[start:start + batch]
        lin1, lin2 = xb @ w1, xb @ w2
        error = np.where(lin1 < 0, 0.0, lin1) + np.where(lin2 < 0, 0.0, lin2) - yb
        d1, d2 = np.where(lin1 > 0, error, 0.0), np.where(lin2 > 0, error, 0.0)
        for key, value in (("w1", w1), ("w2", w2), ("g1", 2 * xb.T @ d1 / batch), ("g2", 2 * xb.T @ d2 / batch),
                           ("loss", float(np.mean(error ** 2))), ("start", start), ("lin1", lin1), ("lin2", lin2),
                           ("error", error), ("d1", d1), ("d2", d2)):
            out[key].append(value)
    return {key: np.array(value) for key, value in out.items()}


def net_loss(X, y, weights1, weights2) -> float:
    return float(np.mean((net_forward(X, weights1, weights2)["preds"] - y) ** 2))
