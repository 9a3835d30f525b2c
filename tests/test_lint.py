"""The formula lint on hand-made Books: one test per rule, plus a clean book."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import time
from pathlib import Path

from xlsxwriter.worksheet import Worksheet

from xlgen.engine.book import Book, Sheet
from xlgen.lint import FUTURE_FUNCTION_PREFIX, LintProblem, lint_book


def book_with(formulas: dict[tuple[int, int], str], names=None, sheet="basic") -> Book:
    return Book(sheets=[Sheet(sheet, formulas=dict(formulas))], names=dict(names or {}))


def messages(problems: list[LintProblem]) -> list[str]:
    return [str(problem) for problem in problems]


def test_clean_book_has_no_problems():
    book = Book(
        sheets=[
            Sheet(
                "basic",
                formulas={
                    (2, 5): "C2*A2+D2",
                    (2, 6): "E2-B2",
                    (2, 7): "LOG10(ABS(F2))+LOG10",  # a function, then a cell named LOG10
                    (2, 8): "_xlfn.STDEV.S(A2:A9)+STDEV(A2:A9)",
                    (2, 9): "_xlfn._xlws.SORT(A2:A9)",
                    (2, 10): "_xlfn.SORTBY(A2:A9,B2:B9)",
                    (2, 11): "_xlfn.LET(_xlpm.g,2*F2,_xlpm.lr,LEARNING_RATE,D2-_xlpm.lr*_xlpm.g)",
                    (2, 12): '"RAND() and SORT(x) in text"&\'RAND sheet\'!A1',
                    (2, 13): "_xlfn.MAP(A2:A9,_xlfn.LAMBDA(_xlpm.v,_xlpm.v*2))",
                    (2, 14): "_xlfn.LET(_xlpm.f,_xlfn.LAMBDA(_xlpm.x,_xlpm.x*2),_xlpm.f(3))",
                    (2, 15): "_xlfn.LET(_xlpm.a,1,SUM($A:$A)+_xlpm.a)",
                    (2, 16): "AVERAGE_GRAD(A2:A9,B2:B9)",
                },
            )
        ],
        names={
            (None, "LEARNING_RATE"): "basic!$R$1",
            (None, "AVERAGE_GRAD"): "_xlfn.LAMBDA(_xlpm.xs,_xlpm.ys,AVERAGE(_xlpm.xs*_xlpm.ys))",
        },
    )
    assert lint_book(book) == []


def test_function_newer_than_2007_needs_xlfn():
    found = lint_book(book_with({(3, 2): "IFS(A3>0,1,TRUE,0)+_xlfn.XLOOKUP(1,A:A,B:B)"}))
    assert messages(found) == [
        "basic!B3: IFS( is newer than Excel 2007: store it as _xlfn.IFS("
    ]


def test_filter_and_sort_need_xlws_but_sortby_does_not():
    found = lint_book(book_with({
        (1, 1): "_xlfn.FILTER(A2:A9,B2:B9>0)",
        (1, 2): "SORT(A2:A9)",
        (1, 3): "_xlfn._xlws.SORTBY(A2:A9,B2:B9)",
    }))
    assert messages(found) == [
        "basic!A1: _xlfn.FILTER( is newer than Excel 2007: store it as _xlfn._xlws.FILTER(",
        "basic!B1: SORT( is newer than Excel 2007: store it as _xlfn._xlws.SORT(",
        "basic!C1: _xlfn._xlws.SORTBY( is newer than Excel 2007: store it as _xlfn.SORTBY(",
    ]


def test_prefix_check_covers_defined_names():
    found = lint_book(book_with({}, names={(None, "AVG"): "LAMBDA(_xlpm.x,AVERAGE(_xlpm.x))"}))
    assert messages(found) == ["name AVG: LAMBDA( is newer than Excel 2007: store it as _xlfn.LAMBDA("]


def test_let_parameters_need_xlpm_in_declaration_and_uses():
    found = lint_book(book_with({(2, 3): "_xlfn.LET(g,2*F2,_xlpm.lr,0.1,D2-_xlpm.lr*g)"}))
    assert messages(found) == [
        "basic!C2: LET parameter g must be stored as _xlpm.g",
        "basic!C2: g refers to a LET/LAMBDA parameter: store it as _xlpm.g",
    ]


def test_a_use_without_xlpm_is_found_even_when_the_declaration_has_it():
    found = lint_book(book_with({(1, 1): "_xlfn.LET(_xlpm.f,_xlfn.LAMBDA(_xlpm.x,_xlpm.x*2),f(3))"}))
    assert messages(found) == ["basic!A1: f refers to a LET/LAMBDA parameter: store it as _xlpm.f"]


def test_lambda_parameters_in_a_defined_name():
    found = lint_book(book_with({}, names={
        (None, "AVERAGE_GRAD"): "_xlfn.LAMBDA(_xlpm.xs,ys,AVERAGE(_xlpm.xs*ys))",
    }))
    assert messages(found) == [
        "name AVERAGE_GRAD: LAMBDA parameter ys must be stored as _xlpm.ys",
        "name AVERAGE_GRAD: ys refers to a LET/LAMBDA parameter: store it as _xlpm.ys",
    ]


def test_xlpm_outside_its_let_is_reported():
    # a LET name is not visible in its own value, nor outside the LET
    found = lint_book(book_with({(1, 1): "_xlfn.LET(_xlpm.a,_xlpm.a+1,_xlpm.a)+_xlpm.b"}))
    assert messages(found) == [
        "basic!A1: _xlpm.a is not a parameter of an enclosing LET or LAMBDA",
        "basic!A1: _xlpm.b is not a parameter of an enclosing LET or LAMBDA",
    ]


def test_text_in_strings_is_ignored():
    found = lint_book(book_with({(1, 1): '"LET(x,1,x) SORT( RAND()"&"say ""NOW()"""'}))
    assert found == []


def test_volatile_functions_in_deterministic_sheets():
    book = Book(
        sheets=[
            Sheet("data", formulas={(1, 1): "RAND()", (1, 2): "_xlfn.RANDARRAY(3)"}),
            Sheet("basic", formulas={(1, 1): "OFFSET(A1,1,0)+NOW()", (1, 2): "NOISE*2"}),
        ],
        names={(None, "NOISE"): "RANDBETWEEN(1,6)", (None, "UNUSED"): "TODAY()"},
    )
    # default: every sheet is deterministic, and so is every workbook name; OFFSET is not
    # volatile here: its inputs decide its value, and the engine computes it
    assert len(lint_book(book)) == 5

    found = lint_book(book, deterministic_sheets=["basic"])
    assert [(problem.cell, problem.message.split(" in ")[0]) for problem in found] == [
        ("basic!A1", "volatile NOW()"),
        ("name NOISE", "volatile RANDBETWEEN()"),  # used by basic!B1; UNUSED is not
    ]
    assert lint_book(book, deterministic_sheets=["data"])[0].cell == "data!A1"
    assert lint_book(book, deterministic_sheets=[]) == []


def test_sheet_scoped_names_follow_their_sheet():
    book = Book(
        sheets=[Sheet("basic"), Sheet("data")],
        names={("data", "SEED"): "RAND()", ("basic", "NOW_IS"): "NOW()"},
    )
    assert messages(lint_book(book, deterministic_sheets=["basic"])) == [
        "name basic!NOW_IS: volatile NOW() in a name of deterministic sheet 'basic': "
        "its value changes on every recalculation"
    ]


def test_sheet_names_with_spaces_are_quoted():
    found = lint_book(book_with({(1, 1): "TODAY()"}, sheet="my data"))
    assert found[0].cell == "'my data'!A1"


def test_future_function_list_matches_installed_xlsxwriter():
    """Our table is XlsxWriter's: every _xlfn. rewrite in Worksheet._prepare_formula."""
    source = inspect.getsource(Worksheet._prepare_formula)
    rewrites = dict(
        (name, prefix)
        for prefix, name in re.findall(r'"(_xlfn\.(?:_xlws\.)?)([A-Z0-9.]+)\(', source)
    )
    assert len(rewrites) > 100
    assert rewrites == FUTURE_FUNCTION_PREFIX


def test_large_book_is_fast():
    rows = 30_000
    formulas = {}
    for row in range(2, rows + 2):
        formulas[(row, 3)] = f"IF(ROW()=2,INIT_A,I{row - 1})"
        formulas[(row, 5)] = f"C{row}*A{row}+D{row}"
        formulas[(row, 9)] = f"C{row}-LEARNING_RATE*H{row}"
        formulas[(row, 10)] = f"_xlfn.LET(_xlpm.g,G{row},D{row}-LEARNING_RATE*_xlpm.g)"
        formulas[(row, 11)] = f"LET(g,G{row},g)"  # wrong on every row
    book = book_with(formulas, names={(None, "LEARNING_RATE"): "basic!$M$1", (None, "INIT_A"): "0"})
    start = time.perf_counter()
    found = lint_book(book)
    elapsed = time.perf_counter() - start
    assert len(found) == 3 * rows  # LET( without _xlfn., g declared and used without _xlpm.
    assert found[0].cell == "basic!K2"
    assert elapsed < 5, f"lint of {len(formulas)} formulas took {elapsed:.1f} s"


def test_shapes_of_a_large_sheet_are_the_regex_of_each_text():
    """A large sheet's shapes come a class of look-alike texts at a time (equal once every
    digit reads 0); each must still be its own text's regex: constants, numbered names and
    parameters that differ only in digits keep apart, references merge."""
    from xlgen.lint import _CELL_REFERENCE, _shapes
    import random

    rng = random.Random(5)
    formulas = {}
    for row in range(1, 3001):
        k = rng.choice("129")
        formulas[(row, 1)] = f"=B{row}*0.0{k}+LET(_xlpm.x{k},C{row + 1},_xlpm.x{k}*$D$1)+x{k}1+LOG10(A{row})"
        formulas[(row, 2)] = f"=SUM(A1:A{row})/{row}"
        formulas[(row, 3)] = f"=E{row}-F{row}"
    formulas[(1, 4)] = "=\"π\"&A1"   # not one byte a character: the texts one by one
    for sheet_formulas in (formulas, {cell: text for cell, text in formulas.items() if cell != (1, 4)}):
        cells, distinct, shape_of = _shapes(sheet_formulas)
        assert cells == list(sheet_formulas)
        assert [distinct[index] for index in shape_of] == [_CELL_REFERENCE.sub("A1", text)
                                                           for text in sheet_formulas.values()]
        assert len(distinct) == len(set(distinct))


def test_a_problem_in_a_large_copied_column_is_named_at_every_cell():
    """(The lint takes a large sheet a class of look-alike texts at a time.)"""
    formulas = {(row, 1): f"_xlfn.LET(x{row % 3}, A{row}, x{row % 3}*2)" if row % 1000 == 7 else f"B{row}*0.5"
                for row in range(1, 5001)}
    found = messages(lint_book(book_with(formulas)))
    rows = [row for row in range(1, 5001) if row % 1000 == 7]
    assert found == [f"basic!A{row}: LET argument 1 should be a parameter name" for row in rows]


def test_clean_sheet_scoped_names_do_not_load_xlsxwriter():
    """XlsxWriter is imported only to name a problem: verify's lint of a clean book with
    sheet-scoped names (graddesc's) never loads it (25 ms of every verify's lint)."""
    code = ("import sys; from xlgen.engine import read_xlsx; from xlgen.lint import lint_book; "
            "problems = lint_book(read_xlsx('workbooks/graddesc.xlsx')); "
            "print(problems, 'xlsxwriter' in sys.modules)")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "False"]
