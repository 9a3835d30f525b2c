"""The course's collab_filter `dotprod` and `bias` sheets, trained by gradient descent.

Top: the course's view: movie ids across, user ids down, the ratings (blank = not
rated); under them the movie factors (and biases) as rows, each user's factors (and
bias) left of their row of predictions, `IF(rating="",0,MMULT(user, movie))` as the
course writes it, and the rmse over the rated cells. The factors shown are the last
gradient-descent step's. Below: the descent, one row per step: every parameter, the
rmse, the gradient of the mean squared error over the rated cells, and each cell's
error; next row's parameters = these - learning_rate * gradient.

The ratings are synthetic (xlgen.reference.collab.synthetic_ratings, a fixed seed):
made from hidden factors plus noise, which the sheet shows, so a learner can see
whether gradient descent finds something that predicts as well as they do.
"""

from __future__ import annotations

from functools import reduce

from xlgen.formula import Expr, Here, Name, Range, Ref, RowTemplate, call
from xlgen.reference.collab import synthetic_ratings
from xlgen.sheets.plan import Chart, Series, WorkbookPlan
from xlgen.options import boolean, fraction, positive, positive_integer

USES_DATA = False
# what the about sheet says of a sheet of this layout (formatted with its options)
ABOUT = (
    "Users x movies ratings predicted by latent factors' dot products, trained by "
    'gradient descent steps (one row each); rmse over the rated cells.')
# the about sheet's numbers to look for
ABOUT_NUMBERS = (("rmse", None),)

OPTIONS = {"seed": 2022, "users": 8, "movies": 8, "factors": 3, "noise": 0.3, "rated": 0.7,
           "learning_rate": 1.0, "steps": 100, "biases": False}


def whole(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        from xlgen.errors import TemplateError
        raise TemplateError(f"{key} must be a whole number of at least 0, got {value!r}")
    return value


def small_count(key, value):
    value = positive_integer(key, value)
    if value > 50:
        from xlgen.errors import TemplateError
        raise TemplateError(f"{key} must be at most 50, got {value!r}")
    return value


OPTION_CHECKS = {"seed": whole, "users": small_count, "movies": small_count, "factors": small_count,
                 "noise": positive, "rated": fraction, "steps": positive_integer, "biases": boolean}

RATINGS_TOP = 2          # ratings from row 2, movie ids in row 1, user ids in column G
ID_COL = 7               # G
FIRST_MOVIE_COL = 8      # H


class Layout:
    """Where everything is, for the builder and the checker alike."""

    def __init__(self, users: int, movies: int, factors: int, biases: bool, steps: int):
        self.users, self.movies, self.factors, self.biases = users, movies, factors, biases
        self.last_movie_col = FIRST_MOVIE_COL + movies - 1
        self.factor_top = RATINGS_TOP + users + 2 + (1 if biases else 0)   # movie factor rows
        self.movie_bias_row = self.factor_top - 1
        self.pred_header = self.factor_top + factors                       # movie ids again
        self.pred_top = self.pred_header + 1
        self.user_factor_col = ID_COL - factors                            # user factors end at F
        self.user_bias_col = self.user_factor_col - 1
        self.rmse_row = self.pred_top + users + 1
        self.train_inputs = self.rmse_row + 3
        self.step_header = self.train_inputs + 2
        self.first_step = self.step_header + 1
        self.last_step = self.first_step + steps
        col = 1
        self.step_col, self.rmse_col = col, col + 1
        col += 2
        self.params = {}
        for kind, count in self.kinds():
            self.params[kind] = col
            col += count
        self.grads = {}
        for kind, count in self.kinds():
            self.grads[kind] = col
            col += count
        self.error_col = col
        self.last_col = col + users * movies - 1

    def param_cols(self) -> set:
        return {self.params[kind] + offset for kind, size in self.kinds() for offset in range(size)}

    def kinds(self):
        out = [("users", self.users * self.factors), ("movies", self.factors * self.movies)]
        if self.biases:
            out += [("user_bias", self.users), ("movie_bias", self.movies)]
        return out

    # column offsets inside a step row
    def user(self, base, i, k): return base["users"] + i * self.factors + k
    def movie(self, base, k, j): return base["movies"] + k * self.movies + j
    def error(self, i, j): return self.error_col + i * self.movies + j


def step_shapes(L: Layout, count: Ref, learning_rate, steps) -> dict:
    """Each column of the step table as one formula shape (rows differ only in numbers)."""
    U, M, K = L.users, L.movies, L.factors
    p = L.params
    shapes = {}
    for kind, size in L.kinds():
        for offset in range(size):
            col, grad = L.params[kind] + offset, L.grads[kind] + offset
            shapes[col] = call("IF", Here(L.step_col).le(steps), Here(col, -1) - learning_rate * Here(grad, -1),
                               Here(col, -1))
    for i in range(U):
        for j in range(M):
            rating = Ref(RATINGS_TOP + i, FIRST_MOVIE_COL + j, fixed_row=True, fixed_col=True)
            terms = [Here(L.user(p, i, k)) * Here(L.movie(p, k, j)) for k in range(K)]
            if L.biases:
                terms += [Here(p["user_bias"] + i), Here(p["movie_bias"] + j)]
            shapes[L.error(i, j)] = call("IF", rating.eq(""), 0, total(terms) - rating)
    for i in range(U):
        for k in range(K):
            terms = [Here(L.error(i, j)) * Here(L.movie(p, k, j)) for j in range(M)]
            shapes[L.user(L.grads, i, k)] = 2 * total(terms) / count
    for k in range(K):
        for j in range(M):
            terms = [Here(L.error(i, j)) * Here(L.user(p, i, k)) for i in range(U)]
            shapes[L.movie(L.grads, k, j)] = 2 * total(terms) / count
    if L.biases:
        for i in range(U):
            shapes[L.grads["user_bias"] + i] = 2 * call("SUM", HereRange(L.error(i, 0), L.error(i, M - 1))) / count
        for j in range(M):
            shapes[L.grads["movie_bias"] + j] = 2 * total([Here(L.error(i, j)) for i in range(U)]) / count
    shapes[L.rmse_col] = call("SQRT", call("SUMSQ", HereRange(L.error_col, L.last_col)) / count)
    return {col: RowTemplate(expr) for col, expr in shapes.items()}


class HereRange(Expr):
    """A range along the row a RowTemplate is written in."""

    def __init__(self, first_col: int, last_col: int):
        self.first, self.last = Here(first_col), Here(last_col)

    def text(self) -> str:
        return f"{self.first.text()}:{self.last.text()}"


def layout_for(spec) -> Layout:
    o = spec.options
    return Layout(o["users"], o["movies"], o["factors"], o["biases"], o["steps"])


def rows_needed(template, spec) -> int:
    return layout_for(spec).last_step


def total(terms):
    return reduce(lambda a, b: a + b, terms)


def build(workbook: WorkbookPlan, template, spec, data) -> None:
    o = spec.options
    L = layout_for(spec)
    made = synthetic_ratings(o["seed"], o["users"], o["movies"], o["factors"], o["noise"], o["rated"])
    sheet = workbook.add_sheet(spec.name)
    U, M, K = o["users"], o["movies"], o["factors"]

    # --- the course's view -------------------------------------------------------------
    sheet.put(1, ID_COL, "movieId", "header")
    sheet.put(RATINGS_TOP, ID_COL - 1, "userId", "header")
    for j in range(M):
        sheet.put(1, FIRST_MOVIE_COL + j, j + 1, "header")
        sheet.put(L.pred_header, FIRST_MOVIE_COL + j, j + 1, "header")
    sheet.put(L.pred_header, ID_COL - 1, "userId", "header")
    for i in range(U):
        sheet.put(RATINGS_TOP + i, ID_COL, i + 1, "header")
        sheet.put(L.pred_top + i, ID_COL, i + 1, "header")
        for j in range(M):
            if made["rated"][i, j]:
                sheet.put(RATINGS_TOP + i, FIRST_MOVIE_COL + j, float(made["ratings"][i, j]), "input")
    sheet.put(1, 1, f"Ratings (blank: not rated), made from hidden factors plus noise with seed {o['seed']} "
                    "(see the hidden factors at the right).", "note")
    sheet.put(L.factor_top - (2 if L.biases else 1), 1,
              "The factors (and biases) below are the last gradient-descent step's (rows further down); "
              "the course set random numbers here and ran Solver.", "note")
    last = lambda kind, offset: Ref(L.last_step, L.params[kind] + offset, fixed_row=True)  # noqa: E731
    for k in range(K):
        sheet.put(L.factor_top + k, FIRST_MOVIE_COL - 1, f"factor {k + 1}", "label")
        for j in range(M):
            sheet.put(L.factor_top + k, FIRST_MOVIE_COL + j, last("movies", k * M + j), "weight")
    for i in range(U):
        for k in range(K):
            sheet.put(L.pred_top + i, L.user_factor_col + k, last("users", i * K + k), "weight")
    if L.biases:
        sheet.put(L.movie_bias_row, FIRST_MOVIE_COL - 1, "bias", "label")
        for j in range(M):
            sheet.put(L.movie_bias_row, FIRST_MOVIE_COL + j, last("movie_bias", j), "weight")
        sheet.put(L.pred_header, L.user_bias_col, "bias", "label")
        for i in range(U):
            sheet.put(L.pred_top + i, L.user_bias_col, last("user_bias", i), "weight")
    for i in range(U):
        r = L.pred_top + i
        user = Range(Ref(r, L.user_factor_col, fixed_col=True), Ref(r, ID_COL - 1, fixed_col=True))
        for j in range(M):
            c = FIRST_MOVIE_COL + j
            movie = Range(Ref(L.factor_top, c, fixed_row=True), Ref(L.factor_top + K - 1, c, fixed_row=True))
            value = call("MMULT", user, movie)
            if L.biases:
                value = value + Ref(L.movie_bias_row, c, fixed_row=True) + Ref(r, L.user_bias_col, fixed_col=True)
            sheet.put(r, c, call("IF", Ref(RATINGS_TOP + i, c).eq(""), 0, value), "number")
    ratings = Range(Ref(RATINGS_TOP, FIRST_MOVIE_COL, fixed_row=True, fixed_col=True),
                    Ref(RATINGS_TOP + U - 1, L.last_movie_col, fixed_row=True, fixed_col=True))
    predictions = Range(Ref(L.pred_top, FIRST_MOVIE_COL), Ref(L.pred_top + U - 1, L.last_movie_col))
    sheet.put(L.rmse_row, L.last_movie_col - 1, "rmse", "label")
    sheet.put(L.rmse_row, L.last_movie_col,
              call("SQRT", call("SUMXMY2", ratings, predictions) / call("COUNT", ratings)), "number")
    hidden_col = L.last_movie_col + 3
    sheet.put(1, hidden_col, f"The hidden factors the ratings were made from: rating = 3.5 + user bias + movie "
                             f"bias + user·movie + noise (sd {o['noise']:g}), rounded to half stars, 0.5 to 5.", "note")
    sheet.put(2, hidden_col, "user", "header")
    for k in range(K):
        sheet.put(2, hidden_col + 1 + k, f"factor {k + 1}", "header")
    sheet.put(2, hidden_col + 1 + K, "bias", "header")
    for i in range(U):
        sheet.put(3 + i, hidden_col, i + 1, "header")
        for k in range(K):
            sheet.put(3 + i, hidden_col + 1 + k, float(made["hidden_users"][i, k]), "weight")
        sheet.put(3 + i, hidden_col + 1 + K, float(made["hidden_user_bias"][i]), "weight")
    movie_top = 4 + U
    sheet.put(movie_top, hidden_col, "movie", "header")
    for j in range(M):
        sheet.put(movie_top, hidden_col + 1 + j, j + 1, "header")
    for k in range(K):
        sheet.put(movie_top + 1 + k, hidden_col, f"factor {k + 1}", "header")
        for j in range(M):
            sheet.put(movie_top + 1 + k, hidden_col + 1 + j, float(made["hidden_movies"][k, j]), "weight")
    sheet.put(movie_top + 1 + K, hidden_col, "bias", "header")
    for j in range(M):
        sheet.put(movie_top + 1 + K, hidden_col + 1 + j, float(made["hidden_movie_bias"][j]), "weight")

    # --- the descent -----------------------------------------------------------------
    r0 = L.train_inputs
    sheet.put(r0, 1, "learning rate", "label")
    sheet.name_cell("learning_rate", r0, 2, o["learning_rate"])
    sheet.put(r0, 3, "steps", "label")
    sheet.name_cell("steps", r0, 4, o["steps"])
    sheet.put(r0, 5, "rated", "label")
    sheet.put(r0, 6, call("COUNT", ratings), "count")
    count = Ref(r0, 6, fixed_row=True, fixed_col=True)
    sheet.put(r0, 8, "Gradient descent instead of Solver: one row per step on all rated cells. error = "
                     "prediction - rating (0 where not rated); gradient of the mean squared error: 2*sum(error "
                     "* the other side's factor)/rated; next = this - learning_rate*gradient. Rows past `steps` "
                     "keep their parameters. Try learning_rate 2.5 (it diverges).", "note")
    header = {L.step_col: "step", L.rmse_col: "rmse"}
    for prefix, base in (("", L.params), ("grad ", L.grads)):
        for i in range(U):
            for k in range(K):
                header[L.user(base, i, k)] = f"{prefix}user {i + 1} f{k + 1}"
        for k in range(K):
            for j in range(M):
                header[L.movie(base, k, j)] = f"{prefix}movie {j + 1} f{k + 1}"
        if L.biases:
            for i in range(U):
                header[base["user_bias"] + i] = f"{prefix}user {i + 1} bias"
            for j in range(M):
                header[base["movie_bias"] + j] = f"{prefix}movie {j + 1} bias"
    for i in range(U):
        for j in range(M):
            header[L.error(i, j)] = f"error u{i + 1} m{j + 1}"
    for col, text in header.items():
        sheet.put(L.step_header, col, text, "header")
    initial = {"users": made["initial_users"].ravel(), "movies": made["initial_movies"].ravel()}
    if L.biases:
        initial.update(user_bias=made["initial_user_bias"], movie_bias=made["initial_movie_bias"])
    learning_rate, steps = Name("learning_rate"), Name("steps")
    param_cols = L.param_cols()
    for col, shape in step_shapes(L, count, learning_rate, steps).items():
        rows = range(L.first_step + (1 if col in param_cols else 0), L.last_step + 1)
        sheet.put_column(rows, col, shape.column(rows),
                         "number" if col == L.rmse_col or col >= L.error_col else "weight")
    for step in range(o["steps"] + 1):
        sheet.put(L.first_step + step, L.step_col, step, "count")
    for kind, size in L.kinds():
        for offset in range(size):
            sheet.put(L.first_step, L.params[kind] + offset, float(initial[kind][offset]), "input", "weight")
    sheet.names["initial_parameters"] = Range(Ref(L.first_step, L.params["users"], spec.name, True, True),
                                              Ref(L.first_step, L.grads["users"] - 1, None, True, True))
    sheet.charts.append(Chart(
        "line", "rmse by gradient-descent step",
        [Series("rmse", Range(Ref(L.first_step, L.rmse_col, spec.name, True, True),
                              Ref(L.last_step, L.rmse_col, None, True, True)),
                Range(Ref(L.first_step, L.step_col, spec.name, True, True),
                      Ref(L.last_step, L.step_col, None, True, True)))],
        anchor=(2, hidden_col + max(M, K + 1) + 2), x_title="step", y_title="rmse over rated cells",
        size=(520, 300)))
    sheet.widths.update({col: 10 for col in range(1, max(L.last_col, hidden_col + M) + 1)})
    sheet.widths[1] = 13   # the step column, under the "learning rate" label
    # the printed page: the ratings, factors, predictions and chart; the steps' hundred-odd
    # parameter columns stay on the screen
    sheet.print_columns = hidden_col + max(M, K + 1) + 1

