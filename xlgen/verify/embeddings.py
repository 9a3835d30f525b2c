"""Checker for the course's collab_filter `movielens_emb` and `word_emb` sheets.

movielens_emb: the dotprod sheet's factors as lookup tables (user ids and movie ids,
each with five numbers), then one row per MovieLens rating: each id's position by
MATCH, its embedding by OFFSET (an array formula), the prediction by SUMPRODUCT, the
squared error, and the rmse. word_emb: a vocabulary with embeddings, and each word of
a text looked up the same way. Inputs: the tables and the ratings or words; checked:
the positions, the looked-up embeddings, predictions, errors, rmse and the idx columns.
"""

from __future__ import annotations

import numpy as np

from xlgen.formula import cell_name
from xlgen.reference.collab import embedding_rows
from xlgen.verify.core import SheetCheck
from xlgen.verify.locate import normal

LAYOUT = "embeddings"
RATING_HEADERS = ("userid", "movieid", "rating", "user idx")
WORD_HEADERS = ("orig text", "word id")


def expect(sheet, context, result, r, c, value):
    """A looked-up value: expected where the engine computes it; OFFSET cells, volatile,
    are taken at their saved values as inputs (the predictions made from them are checked)."""
    if (r, c) not in sheet.formulas:
        return
    if context.is_volatile(sheet.name, r, c):
        result.volatile.append(f"{sheet.name}!{cell_name(r, c)}")
    else:
        result.expect(r, c, value)


def number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def row_texts(sheet, row):
    return {c: normal(v) for (r, c), v in sheet.constants.items() if r == row and isinstance(v, str)}


def find(texts: dict, headers: tuple):
    for col, text in texts.items():
        if text == headers[0] and all(texts.get(col + i) == h for i, h in enumerate(headers)):
            return col
    return None


def recognise(book, sheet):
    for row in range(1, 6):
        texts = row_texts(sheet, row)
        col = find(texts, RATING_HEADERS)
        if col is not None:
            return ("ratings", row, col)
        col = find(texts, WORD_HEADERS)
        if col is not None:
            return ("words", row, col)
    return None


def read_table(sheet, context, label_row, label_col, width):
    """A 'Row Labels' table: ids in label_col under label_row, `width` numbers to their right,
    and the idx column left of it (1, then =previous+1)."""
    ids, rows, table = [], [], []
    r = label_row + 1
    while sheet.constants.get((r, label_col)) not in (None, ""):
        ids.append(sheet.constants[(r, label_col)])
        values = [context.value(sheet.name, r, label_col + 1 + k) for k in range(width)]
        if not all(number(v) for v in values):
            return None
        table.append([float(v) for v in values])
        rows.append(r)
        r += 1
    return ids, rows, np.array(table)


def expect_idx(sheet, result, rows, idx_col):
    for index, r in enumerate(rows):
        if (r, idx_col) in sheet.formulas:
            result.expect(r, idx_col, float(index + 1))


def tables(sheet):
    """(row, col) of every 'Row Labels' cell, top to bottom."""
    return sorted((r, c) for (r, c), v in sheet.constants.items() if normal(v) == "row labels")


def check(sheet, match, context) -> SheetCheck | None:
    kind, header_row, col = match
    result = SheetCheck(sheet.name, LAYOUT)
    found = tables(sheet)
    if kind == "ratings":
        if len(found) < 2:
            return None
        width = 5
        users = read_table(sheet, context, *found[0], width)
        movies = read_table(sheet, context, *found[1], width)
        if users is None or movies is None:
            return None
        for (label_row, label_col), (_, rows, _) in zip(found[:2], (users, movies)):
            expect_idx(sheet, result, rows, label_col - 1)
            result.inputs[f"table at {cell_name(label_row, label_col)}"] = {
                "cell": f"{sheet.name}!{cell_name(rows[0], label_col)}:{cell_name(rows[-1], label_col + width)}",
                "value": f"{len(rows)} ids x {width} numbers"}
        return check_ratings(sheet, context, result, header_row, col, users, movies, width)
    if not found:
        return None
    vocab_row, vocab_col = found[0]
    width = 0
    while number(context.value(sheet.name, vocab_row + 1, vocab_col + 1 + width)):
        width += 1
    vocab = read_table(sheet, context, vocab_row, vocab_col, width)
    if vocab is None or not width:
        return None
    ids, rows, table = vocab
    expect_idx(sheet, result, rows, vocab_col - 1)
    result.inputs["vocabulary"] = {"cell": f"{sheet.name}!{cell_name(rows[0], vocab_col)}:"
                                           f"{cell_name(rows[-1], vocab_col + width)}", "value": f"{len(ids)} words"}
    words, word_rows = [], []
    r = header_row + 1
    while isinstance(sheet.constants.get((r, col)), str):
        words.append(sheet.constants[(r, col)])
        word_rows.append(r)
        r += 1
    positions, embedded = embedding_rows(words, ids, table)
    for i, r in enumerate(word_rows):
        if positions[i] is None:
            continue
        expect(sheet, context, result, r, col + 1, float(positions[i]))
        for k in range(width):
            expect(sheet, context, result, r, col + 2 + k, float(embedded[i][k]))
    return result


def check_ratings(sheet, context, result, header_row, col, users, movies, width):
    user_ids, _, user_table = users
    movie_ids, _, movie_table = movies
    texts = row_texts(sheet, header_row)
    movie_idx = find(texts, ("movie idx",))
    predict = find(texts, ("predict", "error^2"))
    rmse_col = find(texts, ("rmse",))
    if movie_idx is None or predict is None:
        return None
    user_emb, movie_emb = col + 4, movie_idx + 1
    rows, ratings, pairs = [], [], []
    r = header_row + 1
    while number(sheet.constants.get((r, col))) and number(sheet.constants.get((r, col + 1))):
        rows.append(r)
        pairs.append((sheet.constants[(r, col)], sheet.constants[(r, col + 1)]))
        value = context.value(sheet.name, r, col + 2)
        if not number(value):
            return None
        ratings.append(float(value))
        r += 1
    if not rows:
        return None
    result.inputs["ratings"] = {"cell": f"{sheet.name}!{cell_name(rows[0], col)}:{cell_name(rows[-1], col + 2)}",
                                "value": f"{len(rows)} ratings"}
    user_pos, user_rows = embedding_rows([p[0] for p in pairs], user_ids, user_table)
    movie_pos, movie_rows = embedding_rows([p[1] for p in pairs], movie_ids, movie_table)
    prediction = np.sum(user_rows * movie_rows, axis=1)
    squared = (np.array(ratings) - prediction) ** 2
    for i, r in enumerate(rows):
        for c, value in ((col + 3, user_pos[i]), (movie_idx, movie_pos[i])):
            if value is not None:
                expect(sheet, context, result, r, c, float(value))
        for k in range(width):
            for c, table_row in ((user_emb + k, user_rows[i]), (movie_emb + k, movie_rows[i])):
                expect(sheet, context, result, r, c, float(table_row[k]))
        if (r, predict) in sheet.formulas:
            result.expect(r, predict, float(prediction[i]))
        if (r, predict + 1) in sheet.formulas:
            result.expect(r, predict + 1, float(squared[i]))
    if rmse_col is not None and (header_row + 1, rmse_col) in sheet.formulas:
        result.expect(header_row + 1, rmse_col, float(np.sqrt(np.mean(squared))))
    return result
