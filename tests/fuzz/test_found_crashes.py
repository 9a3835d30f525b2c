"""Crashes and hangs the fuzzer found, each pinned at the depth it was fixed.

Each test names the damaged input that first showed it (benchmarks/fuzz.py or the
issue), and checks the behaviour a user gets now: a value, or one line and exit 2.
"""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.fuzz.harness import judge, run_verify
from xlgen.engine import Book, ExcelError, Sheet, calculate
from xlgen.engine.refs import parse_cell
from xlgen.errors import UnsupportedFormula


def book_of(cells: dict) -> Book:
    """One sheet 's' from {"A1": 3.0, "B1": "=A1+1"}."""
    sheet = Sheet("s")
    for ref, value in cells.items():
        target = sheet.formulas if isinstance(value, str) and value.startswith("=") else sheet.constants
        target[parse_cell(ref)] = value[1:] if target is sheet.formulas else value
    book = Book()
    book.sheets.append(sheet)
    return book


def value(formula: str, **cells):
    return calculate(book_of({"B1": formula, **cells})).values[("s", 1, 2)]


def nested(pattern: str, depth: int, inner: str = "1") -> str:
    for _ in range(depth):
        inner = pattern.replace("@", inner)
    return inner


@pytest.fixture(scope="module")
def small_book(tmp_path_factory):
    from xlgen.build import build
    path = tmp_path_factory.mktemp("found") / "graddesc.xlsx"
    build("graddesc", path, ["epochs=1"])
    return path


# --- numbers the `formulas` tokenizer reads but cannot evaluate ----------------------------

def test_number_with_a_leading_zero_is_read_as_excel_reads_it():
    """`=A1+05` (Excel reads 5): formulas' Number.compile evals '05' as Python, a
    SyntaxError that reached the user as a traceback."""
    assert value("=A1+05", A1=3.0) == 8.0
    assert value("=007*2") == 14.0
    assert value("=0.50+A1", A1=1.0) == 1.5


def test_number_too_large_for_a_double_is_num_error():
    assert value("=1E+309") == ExcelError("#NUM!")
    assert value("=A1+1E+309", A1=1.0) == ExcelError("#NUM!")


def test_leading_zero_in_a_workbook_is_a_wrong_cell_not_a_traceback(small_book, tmp_path):
    """The issue's case end to end: a changed formula is a FAIL (exit 1) naming the cell."""
    from tests.workbook_files import read_formula, replace_formula
    path = tmp_path / "zero.xlsx"
    replace_formula(small_book, path, "basic", "F5", read_formula(small_book, "basic", "F5") + "+05")
    code, out, err, crash = run_verify(path)
    assert judge(code, out, err, crash) is None
    assert code == 1 and "the first in calculation order is basic!F5" in out


# --- nesting and length: Excel's limits are 64 levels and 8,192 characters ----------------

def shape_source(formula: str) -> str:
    from xlgen.engine.compiler import Compiler
    book = book_of({"A1": 1.0, "B1": formula})
    compiler = Compiler(book, {"s": 0}, {}, set())
    shape, _ = compiler.compile(0, formula[1:], 1, 2, False, "s!B1")
    return shape.source


def test_nested_ifs_compile_to_code_that_grows_linearly():
    """IF emitted each branch twice (scalar and array condition), so 16 nested IFs
    took 35 s and 64 (Excel allows 64) never finished."""
    sizes = [shape_source("=" + nested("IF(A1>0,@,A1-1)", depth)).count("\n") for depth in (8, 16, 32)]
    assert sizes[2] < 2.5 * sizes[1] < 6.25 * sizes[0]
    assert value("=" + nested("IF(A1>0,@,A1-1)", 64, "A1*2"), A1=1.0) == 2.0
    assert value("=" + nested("IF(A1>5,0,@)", 64, "A1*2"), A1=1.0) == 2.0


def test_nested_ifs_keep_their_answers_with_an_array_condition():
    cells = {"A1": 1.0, "A2": -2.0, "A3": 3.0}
    formula = "=SUM(" + nested("IF(A1:A3>0,@,A1:A3*10)", 3, "A1:A3") + ")"
    book = book_of({**cells, "B1": formula})
    from xlgen.engine.evaluate import calculate as calc
    book.sheets[0].array_refs[(1, 2)] = "B1"
    assert calc(book).values[("s", 1, 2)] == 1.0 - 20.0 + 3.0


@pytest.mark.parametrize("pattern", ["SUM(@)", "IF(A1,@,2)", "IFERROR(@,2)", "(@)", "SQRT(@)", "-@"])
def test_64_levels_of_nesting_compute(pattern):
    """Excel's nesting limit: 64 levels of anything compute (RecursionError before)."""
    result = value("=" + nested(pattern, 64), A1=1.0)
    assert result in (1.0, -1.0)


def test_deeper_nesting_than_python_can_compile_is_one_line():
    with pytest.raises(UnsupportedFormula, match="nested too deeply to compile") as caught:
        value("=" + nested("IF(A1,@,2)", 200), A1=1.0)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_longest_chain_excel_allows_computes():
    """2,730 additions fill Excel's 8,192 characters; the emitter recursed once each."""
    formula = "=" + "+".join(["A1"] * 2730)
    assert len(formula) - 1 <= 8192
    assert value(formula, A1=1.0) == 2730.0


def test_formula_longer_than_excel_allows_is_refused_in_one_line():
    formula = "=" + "+".join(["A1"] * 20000)
    with pytest.raises(UnsupportedFormula, match=r"a formula of 59,999 characters \(Excel's limit is 8,192\)"):
        value(formula, A1=1.0)
    # _xlfn. prefixes are stored, not typed: they do not count
    assert value("=" + "+".join(["_xlfn.SINGLE(A1)"] * 600), A1=1.0) == 600.0


def test_unparseable_formula_with_a_newline_is_one_line(small_book, tmp_path):
    from tests.workbook_files import replace_formula
    path = tmp_path / "newline.xlsx"
    replace_formula(small_book, path, "basic", "F5", "(B5-E5\n)^2)" + "+1" * 100)
    code, out, err, crash = run_verify(path)
    assert judge(code, out, err, crash) is None
    assert code == 2 and "basic!F5" in err and "..." in err


def test_shared_formula_with_thousands_of_references_renders_without_compiling():
    """A fuzzed collab_filter: a 4,096-reference formula shared over 243 cells compiled a
    35 ms f-string renderer per column (9 s of CPU); past 64 references it is joined."""
    from xlgen.engine.refs import Template
    text = "+".join(f"A{row}+$B{row}" for row in range(1, 2049))
    template = Template(text, 5, 3)
    expected = "+".join(f"B{row + 2}+$B{row + 2}" for row in range(1, 2049))
    assert template.render(7, 4) == expected
    assert template.render(6, 4) != expected
    small = Template("A1+$B2*C$3", 1, 1)
    assert small.render(4, 2) == "B4+$B5*D$3"


def test_whole_columns_on_every_row_are_gathered_once_and_stay_right():
    """Resource bound: SUM(A:A) on each of 10,000 rows gathered the column 10,000 times
    (73 s of CPU at 10k rows). Large ranges are now gathered once, and only once every
    formula cell in them is computed: here column B fills from the bottom up (B{r} reads
    B{r+1}), column C sums column B on every row, D reads C's column."""
    n = 3000
    cells = {}
    for r in range(1, n + 1):
        cells[f"A{r}"] = float(r)
        cells[f"B{r}"] = f"=A{r}+B{r + 1}" if r < n else f"=A{r}"
        cells[f"C{r}"] = f"=SUM(B:B)-MAX($B:$B)+COUNT(B:B)+AVERAGE(A:A)/A{r}"
        cells[f"D{r}"] = f"=SUMPRODUCT(C1:C{n},A1:A{n})/1E+9+MIN(C:C)" if r % 1000 == 0 else 1.0
    values = calculate(book_of(cells)).values
    b = [n * (n + 1) / 2 - r * (r - 1) / 2 for r in range(1, n + 1)]
    for r in (1, 2, n // 2, n):
        assert values[("s", r, 2)] == b[r - 1]
        expected_c = sum(b) - max(b) + n + (n + 1) / 2 / r
        assert values[("s", r, 3)] == pytest.approx(expected_c, rel=1e-12)
    c = [values[("s", r, 3)] for r in range(1, n + 1)]
    assert values[("s", 1000, 4)] == pytest.approx(sum(x * r for x, r in zip(c, range(1, n + 1))) / 1e9 + min(c),
                                                   rel=1e-12)


def test_an_error_quoting_text_with_line_breaks_stays_one_line(monkeypatch, tmp_path):
    """Messages quote the file (sheet names, formula text, zip errors); the command line
    prints any of them on one line."""
    import xlgen.verify
    from xlgen.errors import BadWorkbook

    def refuse(*_args, **_kwargs):
        raise BadWorkbook("book.xlsx: sheet 'two\nlines' is odd\r\n")

    monkeypatch.setattr(xlgen.verify, "verify_file", refuse)
    code, out, err = run_cli("verify", tmp_path / "book.xlsx")
    assert code == 2 and err == "xlgen: error: book.xlsx: sheet 'two\\nlines' is odd\\r\\n\n"


def test_a_formula_in_excels_last_row_stays_on_its_sheet():
    """Row 1,048,576 needs 21 bits; the cell key gave rows 20, so a formula there (a fuzzed
    average-grad) landed on the next sheet: an IndexError traceback, or a wrong sheet."""
    book = book_of({"A1": 2.0, "B1048576": "=A1+1", "C1048576": "=B1048576*2", "D1": "=C1048576+A1"})
    other = Sheet("t")
    other.constants[(1, 1)] = 100.0
    book.sheets.append(other)
    values = calculate(book).values
    assert values[("s", 1048576, 2)] == 3.0
    assert values[("s", 1048576, 3)] == 6.0
    assert values[("s", 1, 4)] == 8.0
    assert set(values) == {("s", 1048576, 2), ("s", 1048576, 3), ("s", 1, 4)}


@pytest.mark.parametrize("sheet, cell", [("adam", "A5"), ("basic", "A5"), ("data", "B6")])
def test_an_error_where_a_data_point_belongs_is_one_line(tmp_path, sheet, cell):
    """A fuzzed course file: `<c r="A5" t="e"><v>#BOGUS!</v></c>` in the adam sheet's x
    column made float() raise a TypeError traceback in the checker."""
    from tests.conftest import COURSE_FIXTURE
    from tests.workbook_files import rewrite_part, sheet_part
    source = COURSE_FIXTURE if COURSE_FIXTURE.exists() else None
    if source is None:
        from tests.fuzz.harness import SHARED_FIXTURES
        source = SHARED_FIXTURES / "graddesc-course.xlsx"
    if not source.exists():
        pytest.skip("the course's workbook is not in ../shared/fixtures")
    part = sheet_part(source, sheet)
    path = tmp_path / "error.xlsx"
    rewrite_part(source, path, part, rf'<c r="{cell}"[^>]*?(?:/>|>.*?</c>)'.encode(),
                 f'<c r="{cell}" t="e"><v>#BOGUS!</v></c>'.encode())
    code, out, err, crash = run_verify(path)
    assert judge(code, out, err, crash) is None, crash
    assert code == 2 and f"{sheet}!{cell} (x) should hold a number, not '#BOGUS!'" in err


def test_a_defined_name_longer_than_excel_allows_is_refused_in_one_line():
    """A fuzzed average-grad: a name holding 60,000 characters was parsed and expanded
    into every formula using it (30 s of CPU, 1.3 GB)."""
    book = book_of({"A1": 1.0, "B1": "=long_name*2"})
    book.names[(None, "LONG_NAME")] = "+".join(["s!$A$1"] * 3000)
    with pytest.raises(UnsupportedFormula, match=r"defined name LONG_NAME of 20,999 characters \(Excel's limit"):
        calculate(book)
    book.names[(None, "LONG_NAME")] = "+".join(["s!$A$1"] * 1000)
    assert calculate(book).values[("s", 1, 2)] == 2000.0


def test_whole_sheet_ranges_in_a_sheet_used_to_its_last_cell():
    """A fuzzed entropy_example: `<c r="XFD1048576"><f>SUM(1:1048576)</f></c>` made the
    used area the whole sheet, and the range walk visited 17 billion positions (a hang).
    Ranges far larger than the cells in use are now read from the cells in use."""
    from xlgen.errors import CircularReference
    cells = {"A1": 1.0, "B2": 2.0, "C3": "=A1+B2", "XFD1048576": "=SUM(1:1048575)"}
    values = calculate(book_of(cells)).values
    assert values[("s", 1048576, 16384)] == 6.0
    with pytest.raises(CircularReference):
        calculate(book_of({**cells, "XFD1048576": "=SUM(1:1048576)"}))
    with pytest.raises(UnsupportedFormula, match="an array of 17,179,852,800 cells"):
        calculate(book_of({**cells, "XFD1048576": "=SUMPRODUCT(1:1048575)"}))


def test_text_where_a_passenger_number_belongs_is_one_line(tmp_path):
    """A fuzzed titanic.xlsx with text in a SibSp cell: a float() traceback in the titanic
    checker before; now one line naming the cell, exit 2."""
    from tests.conftest import ROOT, run_cli
    from tests.workbook_files import rewrite_part, sheet_part
    source = ROOT / "workbooks" / "titanic.xlsx"
    part = sheet_part(source, "mmult")
    damaged = tmp_path / "titanic.xlsx"
    rewrite_part(source, damaged, part, rb'<c r="G10"([^>]*?)(?: t="n")?><v>[^<]*</v></c>',
                 rb'<c r="G10"\1 t="inlineStr"><is><t>ab</t></is></c>')
    code, _out, err = run_cli("verify", damaged)
    assert code == 2
    assert err.strip().splitlines() == ["xlgen: error: mmult!G10 (SibSp) should hold a number, not 'ab'"]


# --- the 5,000-case run of issue 13: three broken cases -------------------------------------

def test_a_whole_sheet_randarray_is_refused_before_it_is_allocated(small_book, tmp_path):
    """A fuzzed two-neuron: `data!C18*_xlfn.RANDARRAY(1048576,16384)` made numpy allocate
    128 GiB (a MemoryError traceback). An array past 16,777,216 cells (the bound ranges
    have: ~1 GiB of cell objects, half the 2 GiB promise) is refused before anything is
    allocated, naming the cell; a sheet-sized array (17 billion cells) is far past it."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, hard))  # an allocation would fail at once
    try:
        with pytest.raises(UnsupportedFormula, match=r"s!B1: RANDARRAY of 1,048,576 x 16,384 cells \(xlgen's "
                                                     r"engine holds at most 16,777,216 in one array"):
            value("=A1*_xlfn.RANDARRAY(1048576,16384)", A1=2.0)
        with pytest.raises(UnsupportedFormula, match="RANDARRAY of 1e\\+300 x 1 cells"):
            value("=SUM(_xlfn.RANDARRAY(1E+300))")
        # the same bound for arrays an operator or MMULT makes from two ranges
        column = {f"A{r}": float(r) for r in range(1, 5001)}
        for formula, what in [("=SUM(A1:A5000*TRANSPOSE(A1:A5000))", r"an array operation \(\*\)"),
                              ("=SUM(IF(A1:A5000>TRANSPOSE(A1:A5000),1,0))", r"an array operation \(>\)"),
                              ("=SUM(MMULT(A1:A5000,TRANSPOSE(A1:A5000)))", "MMULT")]:
            book = book_of({**column, "B1": formula})
            book.sheets[0].array_refs[(1, 2)] = "B1"
            with pytest.raises(UnsupportedFormula, match=f"s!B1: {what} of 5,000 x 5,000 cells"):
                calculate(book)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    from tests.workbook_files import replace_formula
    path = tmp_path / "randarray.xlsx"
    replace_formula(small_book, path, "basic", "F5", "B5*_xlfn.RANDARRAY(1048576,16384)")
    code, out, err, crash = run_verify(path)
    assert judge(code, out, err, crash) is None, crash
    assert code == 2 and err.startswith("xlgen: error: basic!F5: RANDARRAY of 1,048,576 x 16,384 cells")


@pytest.mark.parametrize("formula, expected", [
    ("=SUM(_xlfn.RANDARRAY(-1))", "#VALUE!"),        # int() of a negative size: a ValueError
    ("=SUM(_xlfn.RANDARRAY(\"a\"))", "#VALUE!"),     # int() of an error: a ValueError
    ("=SUM(_xlfn.RANDARRAY(#N/A))", "#N/A"),
    ("=SUM(_xlfn.RANDARRAY(2,2,5,1))", "#VALUE!"),   # Excel: min must not pass max
    ("=SUM(_xlfn.RANDARRAY(2,2,1,\"x\"))", "#VALUE!"),  # a TypeError (error minus float)
    ("=SUM(_xlfn.RANDARRAY(2,2,1.2,1.5,TRUE))", "#VALUE!"),  # no whole number between
    ("=SUM(_xlfn.RANDARRAY(2,2,-1E+308,1E+308))", "#NUM!"),  # past the largest double
])
def test_randarray_with_bad_arguments_is_an_excel_error(formula, expected):
    assert value(formula) == ExcelError(expected)


def test_arrays_within_the_bound_compute():
    column = {f"A{r}": float(r) for r in range(1, 4097)}
    book = book_of({**column, "B1": "=SUM(A1:A4096*TRANSPOSE(A1:A4096))",
                    "C1": "=SUM(MMULT(TRANSPOSE(A1:A4096),A1:A4096))"})
    book.sheets[0].array_refs[(1, 2)] = "B1"
    values = calculate(book).values
    assert values[("s", 1, 2)] == (4096 * 4097 / 2) ** 2
    assert values[("s", 1, 3)] == sum(r * r for r in range(1, 4097))


def test_randarray_draws_within_its_bounds():
    for _ in range(20):
        assert 4.0 <= value("=SUM(_xlfn.RANDARRAY(2,2,1,2,TRUE))") <= 8.0
        assert 0.0 <= value("=MAX(_xlfn.RANDARRAY(3,1))") < 1.0
    assert value("=_xlfn.RANDARRAY(2,2,7,7,TRUE)") == 7.0


def test_the_convolution_reference_leaks_no_warning_on_huge_or_infinite_inputs():
    """A fuzzed conv-example: numpy's 'invalid value encountered in multiply' from the
    reference was printed on stderr. Overflow (pixels of 1e308) and inf * 0 are no news;
    an overflowed sum is Excel's #NUM! (nan), and MAX(0, #NUM!) stays #NUM!, not 0."""
    import warnings

    import numpy as np

    from xlgen.reference.convolution import conv_relu, dense, max_pool
    image = np.zeros((4, 4))
    image[0, 0], image[2, 3] = 1e308, np.inf
    kernel = np.array([[2.0, 0.0], [0.0, -1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = conv_relu([image], [kernel], (3, 3))
        total = dense([out], [np.ones((3, 3))])
    assert np.isnan(out[0, 0])  # 2e308 overflows: #NUM!
    assert np.isnan(out[2, 2])  # inf * 0
    assert np.isnan(out[1, 2])  # MAX(0, -inf): #NUM! in Excel, not 0
    assert out[1, 1] == 0.0 and out[0, 1] == 0.0  # untouched
    assert np.isnan(total)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pooled = max_pool(out, (2, 2))
    assert np.isnan(pooled[0, 0]) and np.isnan(pooled[0, 1]) and pooled[1, 0] == 0.0
    assert np.isnan(pooled[1, 1])  # the block holding out[2, 2]; the rest of it is empty


def test_softmax_of_an_overflowing_output_is_num_error_throughout():
    """exp(1000) is #NUM! in Excel, and so are the total and every probability (numpy gave
    x / inf = 0 for the others, a false FAIL, and printed two warnings)."""
    import warnings

    import numpy as np

    from xlgen.reference.cross_entropy import softmax
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = softmax([1000.0, 1.0, -2.0])
    assert np.isnan(result["exp"][0]) and result["exp"][1] == np.exp(1.0)
    assert np.isnan(result["exp_total"]) and np.isnan(result["softmax"]).all()
    assert softmax([0.0, 0.0])["softmax"].tolist() == [0.5, 0.5]


def test_an_infinite_number_in_a_cell_is_refused_in_one_line(tmp_path):
    """The same case: `<c r="F2"><v>inf</v></c>` (Python reads 'inf' and '1e309' as
    infinity; Excel holds no such number) gave the reference an infinite pixel."""
    from tests.conftest import ROOT
    from tests.workbook_files import rewrite_part, sheet_part
    source = ROOT / "workbooks" / "convolution.xlsx"
    part = sheet_part(source, "conv")
    for text in ("inf", "1e309", "nan"):
        damaged = tmp_path / f"{text}.xlsx"
        rewrite_part(source, damaged, part, rb'(<c r="F5"[^>]*>)<v>[^<]*</v>', rb'\1<v>' + text.encode() + rb'</v>')
        code, out, err, crash = run_verify(damaged)
        assert judge(code, out, err, crash) is None, crash
        assert code == 2 and f"a number Excel cannot hold ('{text}') in row 5" in err


def test_a_cell_on_a_missing_sheet_passed_to_a_function_is_ref_error():
    """A fuzzed convolution: `MAX(0,SUMPRODUCT(D7:F9,conv1_filter1)'a''b'!C3)` gave an
    UnboundLocalError: a cell argument of a library function was wrapped in place
    (`_k2 = _cell_array(_k2)`), but a cell on a sheet that does not exist is the #REF!
    constant, not a variable."""
    for formula in ("=MAX(0,nosuch!C3)", "=MAX(0,SUMPRODUCT(A1:A2,A1:A2),nosuch!C3)", "=ROUND(nosuch!C3,1)",
                    "=SUMPRODUCT(nosuch!C3,A1)"):
        assert value(formula, A1=1.0, A2=2.0) == ExcelError("#REF!"), formula
    assert value("=IFERROR(ROUND(nosuch!C3,1),7)") == 7.0


@pytest.mark.parametrize("formula", ["=MAX((1)2)", "=MAX((1)(2))", "=MAX(SUM(1)SUM(2))", "=MAX(1,{1,2}3)",
                                     "=MAX(0,SUMPRODUCT(A1:A2,A1:A2)'a''b'!C3)", "=(A1:B2)(C1)", "={1,2}{3}"])
def test_an_operand_right_after_a_closing_parenthesis_is_refused(formula):
    """formulas' parser read the operand after `)` as one more argument of the call around
    it (MAX((1)2) was MAX(1,2)); Excel refuses such a formula, and so does verify."""
    with pytest.raises(UnsupportedFormula, match="cannot be parsed"):
        value(formula, A1=1.0)


def test_formulas_with_parentheses_and_arrays_still_parse():
    from xlgen.engine.parse import parse_tree
    assert value("=SUM({1,2;3,4})+MAX((A1),A2)+(1)+(2)", A1=1.0, A2=5.0) == 18.0
    assert value("=INDEX({1,2;3,4},2,1)*SUM(A1)%", A1=100.0) == 3.0
    assert parse_tree("=(A1) B1:B2")[:2] == ("op", " ")  # a space is the intersection


def test_the_fuzzed_convolution_formulas_end_as_excel_would(tmp_path):
    """The case end to end: an unknown name is #NAME? (a wrong cell, named: exit 1); the
    missing comma is refused in one line naming its cell (exit 2)."""
    from tests.conftest import ROOT
    from tests.workbook_files import read_formula, replace_formula
    source = ROOT / "workbooks" / "convolution.xlsx"
    assert read_formula(source, "conv", "AZ3") == "MAX(0,SUMPRODUCT(S2:U4,conv1_filter1))"
    unknown = tmp_path / "unknown.xlsx"
    replace_formula(source, unknown, "conv", "AZ3", "MAX(0,SUMPRODUCT(S2:U4,conv1_f_xlfn._xlws.SORTilter1))")
    code, out, err, crash = run_verify(unknown)
    assert judge(code, out, err, crash) is None, crash
    assert code == 1 and "the first in calculation order is conv!AZ3" in out and "#NAME?" in out
    adjacent = tmp_path / "adjacent.xlsx"
    replace_formula(source, adjacent, "conv", "AK8", "MAX(0,SUMPRODUCT(D7:F9,conv1_filter1)'a''b'!C3)")
    code, out, err, crash = run_verify(adjacent)
    assert judge(code, out, err, crash) is None, crash
    assert code == 2 and err.startswith("xlgen: error: conv!AK8: formula =MAX(0,SUMPRODUCT(D7:F9,conv1_filter1)")


def test_a_brace_right_after_a_row_renders_as_text():
    """A fuzzed entropy_example: `LOG(1-D28}))` (a stray brace after a reference). The
    shape renderer escaped braces for an f-string and split on `{}`, so `D28}` swallowed
    its row's place: a TypeError traceback. Braces are now plain text."""
    from xlgen.engine.refs import Template
    template = Template('-IF(B28=1,LOG(D28),LOG(1-D28}))&"{}"&{1,2}', 28, 7)
    assert template.render(30, 7) == '-IF(B30=1,LOG(D30),LOG(1-D30}))&"{}"&{1,2}'
    assert Template("A1}", 1, 1).render(5, 2) == "B5}"
    cells = {f"A{r}": float(r) for r in range(1, 5)}
    cells.update({f"B{r}": f"=LOG(1-A{r}}})" for r in range(1, 5)})
    with pytest.raises(UnsupportedFormula, match=r"s!B\d: formula =LOG\(1-A\d}\) \(cannot be parsed\)"):
        calculate(book_of(cells))


@pytest.mark.parametrize("part", ["xl/_rels/workbook.xml.rels", "xl/workbook.xml", "sheet"])
@pytest.mark.parametrize("encoding", ["Uyes", "gbk", "base64"])
def test_an_xml_part_in_an_encoding_expat_cannot_read_is_one_line(small_book, tmp_path, part, encoding):
    """A fuzzed collab_filter: `encoding="Uyes"` in a .rels part's XML declaration; expat
    looks the codec up in Python and raised LookupError (ValueError for multi-byte ones)."""
    from tests.workbook_files import rewrite_part, sheet_part
    if part == "sheet":
        part = sheet_part(small_book, "basic")
    damaged = tmp_path / "encoding.xlsx"
    rewrite_part(small_book, damaged, part, rb'encoding="[^"]*"', f'encoding="{encoding}"'.encode())
    code, out, err, crash = run_verify(damaged)
    assert judge(code, out, err, crash) is None, crash
    assert code == 2 and f"{part} cannot be read as XML (" in err


def test_an_output_whose_exp_overflows_verifies_as_excel_computes_it(tmp_path):
    """softmax!B5 = 1000: Excel's EXP gives #NUM!, and so does every cell computed from it;
    verify agrees with that (no false FAIL at the other probabilities, no warning)."""
    from tests.conftest import ROOT
    from tests.workbook_files import rewrite_part, sheet_part
    source = ROOT / "workbooks" / "cross-entropy.xlsx"
    part = sheet_part(source, "softmax")
    damaged = tmp_path / "overflow.xlsx"
    rewrite_part(source, damaged, part, rb'(<c r="B5"[^>]*>)<v>[^<]*</v>', rb"\1<v>1000</v>")
    code, out, err, crash = run_verify(damaged)
    assert judge(code, out, err, crash) is None, crash
    assert code == 0 and err == ""


def test_a_lambda_name_cut_before_its_brackets_close_is_refused_at_once():
    """Fuzz case 4272 (the final 5,000-case run's one hang): average-grad's AVERAGE_SQR_GRAD
    cut to `..._xlpm.grad^\\`. formulas' LAMBDA pattern backtracked for minutes on the
    unclosed call; unbalanced brackets are now refused before it runs."""
    from xlgen.engine.parse import ParseError, _unbalanced, parse_tree
    text = ("_xlfn.LAMBDA(_xlpm.grad,_xlpm.sqr_mom,_xlpm.dampening,_xlpm.sqr_avg,_xlpm.sqr_avg*_xlpm.sqr_mom"
            "+IF(_xlpm.dampening,1-_xlpm.sqr_mom,1)*_xlpm.grad^\\")
    assert _unbalanced(text)  # so the tokenizer never sees it
    with pytest.raises(ParseError):
        parse_tree(text)
    book = book_of({"A1": 1.0, "B1": "=AVERAGE_SQR_GRAD(A1,0.9,TRUE,0)"})
    book.names[(None, "AVERAGE_SQR_GRAD")] = text
    with pytest.raises(UnsupportedFormula, match="defined name AVERAGE_SQR_GRAD \\(unparseable"):
        calculate(book)
    for balanced in ('="("&A1', "='a(b'!A1+1", '=IF(A1,"a""(",2)', "=SUM((A1))"):
        parse_tree(balanced)


@pytest.mark.parametrize("anchor, ref, exit_code", [("F100", "F100:F102", 0),
                                                    ("F1048576", "F1048576:F1048578", 2)])
def test_an_array_formula_dropped_into_the_about_sheet(tmp_path, anchor, ref, exit_code):
    """A fuzzed convolution.xlsx (case 659): an array formula inserted in the about sheet's
    row 13, over a label. Its about check then judged no cell, and comparing the saved values indexed an
    empty array of scales (IndexError traceback). Inside the sheet the cells are reported as
    not checked; a range past the sheet's last row is refused in one line."""
    from pathlib import Path

    from tests.workbook_files import rewrite_part, sheet_part
    original_path = Path(__file__).resolve().parents[2] / "workbooks" / "convolution.xlsx"
    part = sheet_part(original_path, "about")
    damaged = tmp_path / "about-array.xlsx"
    rewrite_part(original_path, damaged, part, rb'<c r="A13"[^>]*>.*?</c>',   # in place of a label
                 f'<c r="{anchor}"><f t="array" ref="{ref}">conv!$DM$4</f></c>'.encode())
    code, out, err, crash = run_verify(damaged)
    assert judge(code, out, err, crash) is None, crash
    assert code == exit_code, (out, err)
    if exit_code == 2:
        assert "runs past the sheet's last row or column" in err
    else:
        assert "not checked" in out and f"about!{anchor}" in out
