"""Collaborative filtering as the course's collab_filter.xlsx (2022 lessons 7-8) does it:
latent factors for users and movies, prediction = their dot product (plus a user and a
movie bias on the `bias` sheet), loss = rmse over the rated cells; here trained by
full-batch gradient descent on the mean squared error over the rated cells.
"""

from __future__ import annotations

import numpy as np


def synthetic_ratings(seed: int, users: int, movies: int, factors: int, noise: float, rated: float) -> dict:
    """Ratings a learner can check GD against: hidden user and movie factors (normal,
    sd 0.6) and biases (sd 0.5) around 3.5, plus normal noise, rounded to half stars and
    clipped to 0.5..5; each cell rated with probability `rated` (the rest blank). All
    drawn from numpy's default_rng(seed) in this order: user factors, movie factors,
    user biases, movie biases, noise, which cells are rated; then the initial factors
    (uniform 0..1, as the course's "initialized to random numbers"), and biases."""
    rng = np.random.default_rng(seed)
    hidden_users = rng.normal(0, 0.6, (users, factors))
    hidden_movies = rng.normal(0, 0.6, (factors, movies))
    user_bias = rng.normal(0, 0.5, users)
    movie_bias = rng.normal(0, 0.5, movies)
    clean = 3.5 + user_bias[:, None] + movie_bias[None, :] + hidden_users @ hidden_movies
    ratings = np.clip(np.round((clean + rng.normal(0, noise, (users, movies))) * 2) / 2, 0.5, 5.0)
    mask = rng.random((users, movies)) < rated
    return {"ratings": ratings, "rated": mask, "hidden_users": hidden_users, "hidden_movies": hidden_movies,
            "hidden_user_bias": user_bias, "hidden_movie_bias": movie_bias,
            "initial_users": rng.uniform(0, 1, (users, factors)),
            "initial_movies": rng.uniform(0, 1, (factors, movies)),
            "initial_user_bias": rng.uniform(0, 1, users),
            "initial_movie_bias": rng.uniform(0, 1, movies)}


def predictions(users, movies, user_bias=None, movie_bias=None) -> np.ndarray:
    out = np.asarray(users) @ np.asarray(movies)
    if user_bias is not None:
        out = out + np.asarray(user_bias)[:, None] + np.asarray(movie_bias)[None, :]
    return out


def errors(ratings, rated, users, movies, user_bias=None, movie_bias=None) -> np.ndarray:
    """Prediction - rating where rated, 0 where blank."""
    return np.where(rated, predictions(users, movies, user_bias, movie_bias) - np.where(rated, ratings, 0.0), 0.0)


def rmse(error: np.ndarray, count: int) -> float:
    return float(np.sqrt(np.sum(error ** 2) / count))


def gradient_descent(ratings, rated, initial: dict, learning_rate: float, rows: int, steps: int,
                     biases: bool) -> list[dict]:
    """`rows` rows: row 0 the initial parameters, row k after k steps (rows past `steps`
    keep theirs). Each row: its parameters, errors, rmse and the gradient of the mean
    squared error over the rated cells."""
    count = int(np.count_nonzero(rated))
    params = {key: np.asarray(value, dtype=np.float64) for key, value in initial.items()}
    history = []
    for row in range(rows):
        if row and row <= steps:
            grad = history[-1]["gradient"]
            params = {key: params[key] - learning_rate * grad[key] for key in params}
        bias_args = (params["user_bias"], params["movie_bias"]) if biases else ()
        error = errors(ratings, rated, params["users"], params["movies"], *bias_args)
        gradient = {"users": 2 * error @ params["movies"].T / count,
                    "movies": 2 * params["users"].T @ error / count}
        if biases:
            gradient["user_bias"] = 2 * error.sum(axis=1) / count
            gradient["movie_bias"] = 2 * error.sum(axis=0) / count
        history.append({"params": params, "error": error, "rmse": rmse(error, count), "gradient": gradient})
    return history


def _key(value):
    """Excel's order for MATCH: numbers before text, text without regard to case."""
    return (1, value.lower()) if isinstance(value, str) else (0, float(value))


def match_ascending(value, keys: list) -> int | None:
    """MATCH(value, keys) with Excel's default match type 1 on an ascending list: the
    1-based position of the largest key <= value, None (#N/A) if none is. None also for
    a list that is not ascending, where Excel's binary search gives no defined answer."""
    ordered = [_key(k) for k in keys]
    if any(a > b for a, b in zip(ordered, ordered[1:])):
        return None
    target = _key(value)
    position = None
    for index, key in enumerate(ordered, start=1):
        if key[0] == target[0] and key <= target:
            position = index
    return position


def embedding_rows(ids: list, table_ids: list, table: np.ndarray) -> tuple[list, np.ndarray]:
    """The course's lookup: each id's position in the table (MATCH) and its embedding row."""
    positions = [match_ascending(value, table_ids) for value in ids]
    rows = np.array([table[p - 1] if p else np.full(table.shape[1], np.nan) for p in positions])
    return positions, rows
