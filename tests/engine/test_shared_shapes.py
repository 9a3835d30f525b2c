"""Formulas that differ only in where their references point share one parse and one
compiled function (compiler._tree, the shape factories): each cell must still read its
own cells."""

from engine_cases import book_of
from hypothesis import given, settings
from hypothesis import strategies as st

from xlgen.engine import calculate


def test_per_epoch_sums_read_their_own_rows():
    # rmse-like: each row of column C sums its own block of three rows of column A, so
    # every cell is a new shape with the same skeleton (offsets differ, extents equal)
    cells = {f"A{r}": float(r * r) for r in range(1, 31)}
    for i in range(10):
        cells[f"C{i + 1}"] = f"=SQRT(SUM(A{3 * i + 1}:A{3 * i + 3}))+$A$1*A{i + 1}"
    values = calculate(book_of(("s", cells))).values
    for i in range(10):
        block = sum(float(r * r) for r in range(3 * i + 1, 3 * i + 4))
        assert values[("s", i + 1, 3)] == block ** 0.5 + 1.0 * (i + 1) ** 2


def test_equal_rows_in_one_formula_and_different_in_the_next():
    # the first cell's references share a row (A2 and B2), the next ones' do not: the
    # shared code must not tie them together
    cells = {f"A{r}": float(r) for r in range(1, 11)}
    cells.update({f"B{r}": 100.0 * r for r in range(1, 11)})
    cells["D1"] = "=A2-B2"
    cells["D2"] = "=A4-B3"
    cells["D3"] = "=A6-B4"
    cells["D4"] = "=A2-B2"
    values = calculate(book_of(("s", cells))).values
    assert values[("s", 1, 4)] == 2.0 - 200.0
    assert values[("s", 2, 4)] == 4.0 - 300.0
    assert values[("s", 3, 4)] == 6.0 - 400.0
    assert values[("s", 4, 4)] == 2.0 - 200.0


def test_a_reference_inside_a_string_is_not_shifted():
    # "A1" in a string literal is text, not a reference: it stays in the skeleton while
    # the real reference beside it moves
    cells = {f"A{r}": float(r) for r in range(1, 11)}
    cells["C1"] = '=LEN("A1")+A2'
    cells["C2"] = '=LEN("A1")+A5'
    cells["C3"] = '=LEN("A1")+A9'
    values = calculate(book_of(("s", cells))).values
    assert [values[("s", r, 3)] for r in (1, 2, 3)] == [4.0, 7.0, 11.0]


# Formulas of one skeleton (the text with its references' rows taken out) in one column
# share one generated function: from the third on, its parameters are re-bound from the
# new rows (compiler._Family) instead of generating the code again. Each such cell must
# equal the same formula computed alone, in a book where nothing is shared.
_SKELETONS = [
    "A{0}-B{1}",  # two relative cells: they meet (distance 0) on some rows
    "SQRT(SUM(A{0}:A{1}))+$B$1*A{2}",  # a moving range and an absolute cell
    "A${0}*$B{1}+A{2}",  # an absolute row, an absolute column
    "SUM(A{0}:A${1})",  # mixed ends, sorted at run time
    "ROW(A{0})*1000+ROW()+A{1}",  # rows as numbers
    "other!A{0}+A{1}-other!B{2}",  # another sheet
    "IF(A{0}>A{1},A{0},B{1})+SCALED",  # a defined name relative to A1
    "_xlfn.LET(_xlpm.x,A{0},_xlpm.y,B{1},_xlpm.x*_xlpm.y+TWICE(A{2}))",  # LET and a LAMBDA
    "A{0}+A{0}*B{1}",  # one row written twice
    "SUMPRODUCT(A{0}:A{1},B{2}:B{3})",
]


def _family_rows(rng, count, width):
    rows = []
    for _ in range(count):
        first = rng.randint(2, 30)
        rows.append([first + rng.choice([0, 0, 1, rng.randint(0, 20)]) for _ in range(width)])
    return rows


def test_a_family_of_formulas_reads_what_each_formula_says():
    import random

    from xlgen.engine.compiler import Compiler

    rng = random.Random(14)
    constants = {f"A{r}": float(r * r % 17) - 3.5 for r in range(1, 61)}
    constants.update({f"B{r}": 0.25 * r - 4.0 for r in range(1, 61)})
    other = {f"{col}{r}": (r % 7) / (ord(col) - 63.0) for col in "ABCDEFGHIJKLMN" for r in range(1, 70)}
    # names' relative references count from A1 and point into `other`, which holds no formula
    names = {(None, "SCALED"): "main!$B$7*other!A2",
             (None, "TWICE"): "_xlfn.LAMBDA(_xlpm.v,2*_xlpm.v+other!B3)"}
    cells, expected = dict(constants), {}
    for col, skeleton in zip("DEFGHIJKLM", _SKELETONS):
        width = max(int(part.split("}")[0]) for part in skeleton.split("{")[1:]) + 1
        for row, rows in zip(rng.sample(range(1, 60), 24), _family_rows(rng, 24, width)):
            text = "=" + skeleton.format(*rows)
            cells[f"{col}{row}"] = text
            alone = calculate(book_of(("main", {**constants, f"{col}{row}": text}), ("other", other),
                                      names=names)).values
            expected[("main", row, ord(col) - 64)] = alone[("main", row, ord(col) - 64)]
    families = []
    original = Compiler.__init__

    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        families.append(self._families)
    Compiler.__init__ = keep
    try:
        values = calculate(book_of(("main", cells), ("other", other), names=names)).values
    finally:
        Compiler.__init__ = original
    assert families and len(families[0]) >= 8  # the code really was re-bound
    for cell, value in expected.items():
        assert repr(values[cell]) == repr(value), (cell, cells[f"{chr(64 + cell[2])}{cell[1]}"])


def test_a_distance_the_shared_code_took_as_zero_is_not_taken_elsewhere():
    # the second formula's range starts on its own row (its code reads `r`), the third's
    # does not: the third must not be re-bound to code that reads from its own row
    cells = {f"A{r}": float(2 ** r) for r in range(1, 20)}
    cells.update({"C2": "=SUM(A4:A9)", "C5": "=SUM(A5:A9)", "C6": "=SUM(A3:A9)", "C7": "=SUM(A7:A9)"})
    values = calculate(book_of(("s", cells))).values
    for row, (first, last) in {2: (4, 9), 5: (5, 9), 6: (3, 9), 7: (7, 9)}.items():
        assert values[("s", row, 3)] == sum(2.0 ** r for r in range(first, last + 1))


def test_a_column_whose_references_share_one_row_renders_as_the_general_way():
    from xlgen.engine.refs import Template
    for text, row, col in [("C5+D5*A5", 5, 5), ("N4-M4", 5, 3), ('"{}"&A7&B7&{1,2}', 9, 2),
                           ("SUM(A3:A3)+$B$1*B3", 3, 4)]:
        template = Template(text, row, col)
        render, low, high = template.column_renderer(col)
        general = Template(text + "+0*Z1", row, col).column_renderer(col)[0]  # two distinct rows
        for r in (low, row, row + 1, 999, high):
            assert render(r) + "+0*Z" + str(1 + r - row) == general(r)


def test_rows_like_the_row_above_are_recognised_but_each_cell_still_read():
    # rows repeat (each cell recognised as the shape of the cell above, rendered at its
    # row); rows that differ in one cell's formula, in a reference's row or in their
    # columns compute their own
    cells = {f"A{r}": float(r) for r in range(1, 80)}
    expected = {}
    for r in range(2, 80):
        b, c, d = f"=A{r}*2", f"=B{r}+A{r - 1}", f'=C{r}&"|"'
        vb, vc = r * 2.0, r * 2.0 + (r - 1)
        if r == 30:
            b, vb, vc = f"=A{r}*3", r * 3.0, r * 3.0 + (r - 1)
        if r == 41:
            c, vc = f"=B{r}+A{r - 2}", r * 2.0 + (r - 2)
        if r == 52:
            d = f'=C{r}&"|"&"|"'
        cells.update({f"B{r}": b, f"C{r}": c, f"D{r}": d})
        expected.update({(r, 2): vb, (r, 3): vc})
        if r == 63:
            cells[f"E{r}"] = f"=D{r}"
        if r == 64:
            del cells[f"C{r}"]
            cells[f"D{r}"] = '=C64&"|"'
            expected.pop((r, 3))
        if r == 70:  # as many cells, the same texts, one in another column
            cells[f"E{r}"] = cells.pop(f"D{r}")
    values = calculate(book_of(("s", cells))).values
    assert ("s", 70, 4) not in values and values[("s", 70, 5)] == "209|"
    values[("s", 70, 4)] = values[("s", 70, 5)]
    for (r, c), value in expected.items():
        assert values[("s", r, c)] == value, (r, c)
    for r in range(2, 80):
        text = "" if r == 64 else repr(expected[(r, 3)]).removesuffix(".0")
        assert values[("s", r, 4)] == text + ("||" if r == 52 else "|"), r
    assert values[("s", 63, 5)] == values[("s", 63, 4)]


def test_a_column_joined_on_one_row_gives_the_renderers_text():
    # the set-up checks such a column inline (str(row + d).join(pieces)), not by the renderer
    from xlgen.engine.refs import Template
    for text, row, col, d in [("C5+D5*A5", 5, 5, 0), ("N4", 5, 3, -1), ("data!B5", 33, 1, -28),
                              ('"{}"&A7&B7&{1,2}', 7, 2, 0), ("$B$1*2", 3, 4, 0), ("SUM(F4:F4)", 4, 18, 0),
                              ("1/3", 9, 2, 0)]:
        template = Template(text, row, col)
        render, low, high = template.column_renderer(col)
        pieces, found = template.column_joined(col)
        assert found == d
        for r in (low, row, row + 1, 999, high):
            assert str(r + d).join(pieces) == render(r)
    assert Template("SUM(F4:F32)", 4, 18).column_joined(18) is None  # two rows: the renderer only


def test_a_cell_after_a_gap_in_rows_is_not_taken_for_the_shape_of_the_rows_before():
    # B9 reads A3, as B3's shape (the row above) would read at row 4: the previous row's
    # text the set-up keeps must be row 8's, not row 3's
    cells = {f"A{r}": float(r) for r in range(1, 12)}
    cells.update({"B2": "=A1*2", "B3": "=A2*2", "B9": "=A3*2", "B10": "=A9*2", "B11": "=A10*2"})
    values = calculate(book_of(("s", cells))).values
    assert [values[("s", r, 2)] for r in (2, 3, 9, 10, 11)] == [2.0, 4.0, 6.0, 18.0, 20.0]


_PIECES = ["A1", "$B$2", "C3:D4", "A:B", "$C:D", "3:4", "$5:$6", '"x""A1"', "'s''h'!", "s!", "AB12", "a1", "+",
           "(", ")", ",", " ", "SUM(", "1.5", "E1E", ".A1", "A1(", "$A$0", "XFD1048576", "[", "#", "R[1]"]


@settings(derandomize=True, max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=10))
def test_a_row_skeleton_with_its_rows_put_back_is_the_formula(pieces):
    # the compiler's skeleton (built from REF_RE's split, as the shape key is) loses nothing:
    # its NULs are exactly the references' row numbers, in text order
    from xlgen.engine.refs import REF_RE, row_skeleton
    text = "".join(pieces)
    skeleton, rows = row_skeleton(text)
    assert (skeleton, rows) == row_skeleton(text, REF_RE.split(text))
    parts = skeleton.split("\x00")
    assert len(parts) == len(rows) + 1
    assert "".join(part + str(row) for part, row in zip(parts, rows)) + parts[-1] == text
    expected_rows = []
    for m in REF_RE.finditer(text):
        g = m.groups()
        expected_rows += [int(g[i]) for i in (5, 9, 15, 17) if g[i] is not None]
    assert rows == expected_rows


# Formulas that differ in their references' columns too (collab-filter's gradients) share
# one parse per reference skeleton (compiler._parsed_by_references): the tree each gets
# must be its own parse tree, whatever its references.
REFERENCE_SHAPES = [
    "2*(CU31*AA31+CV31*AB31)/$F$28",
    "SUMPRODUCT($B5:$F5,G$1:G$5)+data!C3",
    "SUM(A:A)-SUM(3:4)+'my sheet'!$B$2",
    'IF(H2="",0,MMULT($D16:$F16,H$12:H$14))&"A1"',
    'INDIRECT("B2")+C3',
    "LET(x,A1,x*B2)",
]


def _moved(text: str, dc: int, dr: int) -> str:
    from xlgen.engine.refs import shift_formula
    return shift_formula(text, dr, dc)


def test_reference_skeletons_give_each_formula_its_own_tree():
    from xlgen.engine import compiler
    from xlgen.engine.book import Book, Sheet
    book = Book(sheets=[Sheet("s"), Sheet("data"), Sheet("my sheet")])
    engine = compiler.Compiler(book, {"s": 0, "data": 1, "my sheet": 2}, {}, set())
    for text in REFERENCE_SHAPES:
        for dc, dr in [(0, 0), (1, 0), (3, 2), (7, 5), (2, 9)]:
            moved = _moved(text, dc, dr)
            assert engine._parsed_by_references(moved, None) == compiler.parse_tree(moved), moved


def test_reference_skeletons_parse_once(monkeypatch):
    from xlgen.engine import compiler
    parsed = []
    real = compiler.parse_tree
    monkeypatch.setattr(compiler, "parse_tree", lambda text: parsed.append(text) or real(text))
    compiler._parsed.cache_clear()
    cells = {f"{col}{r}": float(r + i) for i, col in enumerate("ABCDEFGH") for r in range(1, 4)}
    for i, col in enumerate("JKLMNOPQ"):  # each column's own pair of columns: a new row skeleton each
        a, b = "ABCDEFGH"[i], "ABCDEFGH"[(i + 3) % 8]
        cells[f"{col}1"] = f"=2*({a}1*{b}2+{a}3)/$A$1"
    values = calculate(book_of(("s", cells))).values
    for i, col in enumerate("JKLMNOPQ"):
        j = (i + 3) % 8
        assert values[("s", 1, 10 + i)] == 2 * ((1.0 + i) * (2.0 + j) + (3.0 + i)) / 1.0
    # the first formula, the second with its probe, then none
    assert len(parsed) == 3, parsed
