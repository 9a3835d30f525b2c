"""Array formulas, array functions, OFFSET, dynamic arrays and Excel Tables.

Where formulas' ExcelModel evaluates a feature (SUMPRODUCT, SUMXMY2, COUNTIF, MATCH,
INDEX, MMULT, EXP/LN/LOG/LOG10, one-cell array formulas) our values are compared with
its values; where it does not (ranges filled by an array formula, OFFSET, spills, A1#,
tables) with values worked out by hand from Excel's rules.
"""

import math

import pytest
import xlsxwriter
from engine_cases import compare_with_excelmodel, write_package

from xlgen.engine import ExcelError, calculate, read_xlsx
from xlgen.engine.refs import parse_cell
from xlgen.errors import BadWorkbook, CircularReference, UnsupportedFormula

NA, VALUE, REF, NUM = (ExcelError(c) for c in ("#N/A", "#VALUE!", "#REF!", "#NUM!"))
BLOCK = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.5]]  # data!A1:C3
KERNEL = [[0.5, -1.0, 0.25], [2.0, 0.0, -0.5], [1.5, 1.0, -2.0]]  # data!E1:G3
KEYS = [(10.0, "ten"), (20.0, "twenty"), (30.0, "thirty"), (40.0, "forty"), (50.0, "fifty")]  # I1:J5

# calc!A{n}: (formula, written as an array formula?, the value Excel gives)
MODEL_FORMULAS = [
    ("=SUMPRODUCT(data!A1:A3,data!B1:B3)", False, 1 * 2 + 4 * 5 + 7 * 8),
    ("=SUMPRODUCT((data!A1:A3>1)*data!B1:B3)", False, 5 + 8),  # an array argument, no CSE
    ("=SUMXMY2(data!A1:C1,data!A2:C2)", False, 27.0),
    ('=COUNTIF(data!A1:C3,">4")', False, 5.0),
    ("=COUNTIF(data!A1:A6,0)", False, 1.0),  # the empty A5 is not 0; A4 is text
    ("=MATCH(35,data!I1:I5)", False, 3.0),
    ("=MATCH(30,data!I1:I5,0)", False, 3.0),
    ("=INDEX(data!J1:J5,MATCH(40,data!I1:I5,0))", False, "forty"),
    ("=INDEX(data!A1:C3,2,3)", False, 6.0),
    ("=EXP(1.5)", False, math.exp(1.5)),
    ("=LN(10)", False, math.log(10)),
    ("=LOG(1000)", False, 3.0),  # Excel's LOG is base 10
    ("=LOG(8,2)", False, 3.0),
    ("=LOG10(0.01)", False, -2.0),
    ("=LOG(0)", False, NUM),
    ("=MMULT(data!A1:C1,data!E1:E3)", False, 0.5 + 4 + 4.5),
    ("=SUMPRODUCT(data!A1:C3,data!E1:G3)", False, 3.75),
    ("=SUMPRODUCT(data!A1:A3,data!B1:C3)", False, VALUE),  # shapes differ
    ("=MAX(0,SUM(data!A1:C3*data!E1:G3))", True, 3.75),  # the course's convolution
    ("=SUM(data!A1:A3*data!B1:B3)", True, 78.0),
    ("=SUMPRODUCT(data!A1:A4,data!B1:B4)", False, 78.0),  # text counts as 0
    ("=MMULT(data!A1:A4,1)", False, VALUE),  # text in MMULT
]
# what ExcelModel cannot evaluate: (cell, formula, array range or None, the value Excel gives)
BY_HAND = [
    # an ordinary formula intersects each range with its own row (legacy Excel): A1*B1
    ("calc!B1", "=SUM(data!A1:A3*data!B1:B3)", None, 2.0),
    ("calc!B2", "=OFFSET(data!A1,1,2)", None, 6.0),
    ("calc!B3", "=SUM(OFFSET(data!A1:A2,1,1,2,2))", None, 5 + 6 + 8 + 9.5),
    ("calc!B4", "=OFFSET(data!J1,A7-1,0)", None, "thirty"),  # rows from a formula cell
    ("calc!B5", "=SUM(OFFSET(data!C3,0,0,-2,-2))", None, 5 + 6 + 8 + 9.5),  # up and left
    ("calc!B6", "=OFFSET(data!A1,-1,0)", None, REF),  # off the sheet
    ("calc!B7", "=OFFSET(data!A1,0,0,0,1)", None, REF),  # no rows
    ("calc!B8", "=OFFSET(OFFSET(data!A1,1,0),1,1)", None, 8.0),
    ("calc!B9", "=OFFSET(5,1,1)", None, VALUE),  # not a reference
    ("calc!B10", "=SUM(data!A1:A3*data!B1:B3)", None, VALUE),  # ordinary formula, row 10: no row to take
    ("calc!C1", "=data!A1:A3*10", "C1:C3", [10.0, 40.0, 70.0]),
    ("calc!D1", "=TRANSPOSE(data!I1:I3)", "D1:F1", [10.0, 20.0, 30.0]),
    ("calc!D3", "=MMULT(data!A1:B2,data!E1:F2)", "D3:E4", [4.5, -1.0, 12.0, -4.0]),
    ("calc!D6", "=data!A1:C1*2", "D6:F7", [2.0, 4.0, 6.0] * 2),  # a row repeats down the range
    ("calc!D9", "=data!A1:A2+0", "D9:E11", [1.0, 1.0, 4.0, 4.0, NA, NA]),  # #N/A past the result
    ("calc!G1", "=5", "G1:H2", [5.0] * 4),  # one value fills the range
    ("calc!D13", "=OFFSET(data!A1:C1,1,0)", "D13:F13", [4.0, 5.0, 6.0]),  # collab_filter's lookup
]


def make_array_workbook(path):
    book = xlsxwriter.Workbook(str(path))
    data = book.add_worksheet("data")
    calc = book.add_worksheet("calc")
    for r in range(3):
        for c in range(3):
            data.write_number(r, c, BLOCK[r][c])
            data.write_number(r, 4 + c, KERNEL[r][c])
    for r, (key, word) in enumerate(KEYS):
        data.write_number(r, 8, key)
        data.write_string(r, 9, word)
    data.write_string(3, 0, "text")  # A4; A5 stays empty
    data.write_number(5, 0, 0.0)  # A6
    data.write_number(3, 1, 4.0)  # B4
    for n, (formula, array, _) in enumerate(MODEL_FORMULAS, 1):
        if array:
            calc.write_array_formula(f"A{n}:A{n}", "{" + formula + "}")
        else:
            calc.write_formula(f"A{n}", formula)
    for cell, formula, fills, _ in BY_HAND:
        cell = cell.split("!")[1]
        if fills:
            calc.write_array_formula(fills, "{" + formula + "}")
        else:
            calc.write_formula(cell, formula)
    book.close()
    return path


@pytest.fixture(scope="module")
def array_book(tmp_path_factory):
    path = make_array_workbook(tmp_path_factory.mktemp("arrays") / "arrays.xlsx")
    book = read_xlsx(path)
    return path, book, calculate(book)


def cells_of(ref):
    first, _, last = ref.partition(":")
    r1, c1 = parse_cell(first)
    r2, c2 = parse_cell(last or first)
    return [(r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)]


def agrees(ours, expected):
    if isinstance(expected, float) and isinstance(ours, float):
        return math.isclose(ours, expected, rel_tol=1e-12, abs_tol=1e-300)
    return ours == expected


def test_array_functions_agree_with_excelmodel(array_book, cache):
    path, book, calc = array_book
    skip = {("calc", r, c) for cell, _, fills, _ in BY_HAND
            for r, c in cells_of(fills or cell.split("!")[1])}
    compared, mismatches = compare_with_excelmodel(path, book, calc, cache, skip)
    assert not mismatches, mismatches
    assert compared == len(MODEL_FORMULAS)


@pytest.mark.parametrize("n", range(1, len(MODEL_FORMULAS) + 1))
def test_array_functions_by_hand(array_book, n):
    _, _, calc = array_book
    formula, _, expected = MODEL_FORMULAS[n - 1]
    assert agrees(calc.values[("calc", n, 1)], expected), formula


@pytest.mark.parametrize("cell, formula, fills, expected", BY_HAND, ids=[c for c, *_ in BY_HAND])
def test_what_excelmodel_cannot_by_hand(array_book, cell, formula, fills, expected):
    _, book, calc = array_book
    sheet = book.sheet("calc")
    if fills is None:
        assert agrees(calc.values[("calc", *parse_cell(cell.split("!")[1]))], expected), formula
        return
    cells = cells_of(fills)
    assert [calc.values[("calc", r, c)] for r, c in cells] == expected, formula
    # the range's other cells are formula cells of the anchor's text, their saved values cached
    for r, c in cells:
        assert sheet.formulas[(r, c)] == formula[1:] and (r, c) not in sheet.constants


def test_offset_is_computed_not_volatile(array_book):
    _, _, calc = array_book
    assert calc.volatile == []


def test_offset_waits_for_the_cells_it_finds_at_run_time():
    """OFFSET's target is known only once its inputs are: A1 reads C1:C3 through OFFSET,
    and C3 is computed after A1 in sheet order; a loop through OFFSET is still a loop."""
    from engine_cases import book_of
    book = book_of(("s", {"A1": "=SUM(OFFSET(C1,0,0,B1,1))", "B1": "=1+2", "C1": 1.0, "C2": "=C1*10",
                          "C3": "=C2+A2", "A2": 5.0, "D1": "=OFFSET(D1,1,0)", "D2": "=D5+1",
                          "D5": "=OFFSET(A1,0,0)*2", "E1": "=OFFSET(C2,0,0)+OFFSET(E9,B1-3,0)",
                          "E9": "=C3*2"}))
    calc = calculate(book)
    assert calc.values[("s", 1, 1)] == 1 + 10 + 15
    assert calc.values[("s", 1, 5)] == 10 + 30  # two ranges found one after the other
    assert calc.values[("s", 5, 4)] == 52.0 and calc.values[("s", 1, 4)] == 53.0
    assert calc.order.index(("s", 3, 3)) < calc.order.index(("s", 1, 1))
    loop = book_of(("s", {"A1": "=OFFSET(A1,1,0)", "A2": "=OFFSET(A2,-1,0)+1"}))
    with pytest.raises(CircularReference):
        calculate(loop)


def test_offset_targets_found_one_by_one_in_the_walk():
    """Two zigzag chains (A and B) that neither sheet order nor its reverse settles; C1
    reads each chain's end through OFFSET, so the depth-first walk learns C1's inputs in
    two steps: A2 first, then (on running C1 again) B2."""
    from engine_cases import book_of
    cells = {"C1": "=OFFSET(A2,0,0)+OFFSET(B2,0,0)"}
    for col in "AB":
        chain = [2, 10, 3, 9, 4, 8, 5, 7, 6]
        for row, below in zip(chain, chain[1:]):
            cells[f"{col}{row}"] = f"={col}{below}+1"
        cells[f"{col}6"] = "=1"
    calc = calculate(book_of(("s", cells)))
    assert calc.values[("s", 2, 1)] == 9.0 and calc.values[("s", 1, 3)] == 18.0
    assert calc.order[-1] == ("s", 1, 3)


def test_offset_of_a_computed_reference_is_named():
    from engine_cases import book_of
    with pytest.raises(UnsupportedFormula) as info:
        calculate(book_of(("s", {"A1": 1.0, "B2": "=OFFSET(INDEX(A1:A3,2),1,1)"})))
    assert info.value.cell == "s!B2" and "OFFSET" in info.value.what


def make_dynamic_workbook(path):
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet("s")
    for r in range(3):
        ws.write_number(r, 0, r + 1.0)
    ws.write_dynamic_array_formula("C1:C3", "=A1:A3*2")
    ws.write_formula("D1", "=SUM(C1#)")
    ws.write_formula("D2", "=SUM(_xlfn.ANCHORARRAY(C1))+C3")
    ws.write_formula("D3", "=C1#")  # an ordinary formula: implicit intersection, row 3
    ws.write_formula("D4", "=SUM(A1#)")  # A1 anchors no spill
    ws.write_dynamic_array_formula("E1", "=_xlfn.SINGLE(A1:A3)")
    ws.write_formula("F2", "=@A1:A3")
    ws.write_dynamic_array_formula("G1:H2", "=MMULT(A1:A2,TRANSPOSE(A1:A2))")
    ws.add_table("J1:M5", {"name": "Sales", "total_row": True, "columns": [
        {"header": "Item", "total_string": "Total"}, {"header": "Price"}, {"header": "Qty"},
        {"header": "Total", "formula": "=[@Price]*Sales[@Qty]"}],
        "data": [["pen", 1.5, 4], ["ink", 12.0, 1], ["pad", 3.25, 2]]})
    ws.write_formula("O1", "=SUM(Sales[Total])")
    ws.write_formula("O2", "=SUM(Sales[[#Data],[Price]:[Qty]])")
    ws.write_formula("O3", "=COUNTA(Sales[#All])")
    ws.write_formula("O4", "=Sales[[#Headers],[Qty]]")
    ws.write_formula("O5", "=Sales[[#Totals],[Item]]")
    ws.write_formula("O6", "=SUM(Sales)")
    ws.write_formula("O7", "=Sales[[#This Row],[Price]]")  # row 7 is not in the table
    ws.write_formula("O8", "=Sales[Nope]")
    ws.write_formula("O9", "=SUMPRODUCT(Sales[Price],Sales[Qty])")
    ws.write_formula("O10", "=MAX(Sales[#Data])")
    ws.write_formula("O11", "=COUNTA(Sales[#Headers])")
    other = book.add_worksheet("other")
    for r in range(1, 5):  # This Row from another sheet: the same row of the table
        other.write_formula(r, 0, "=Sales[[#This Row],[Price]]*2")
        other.write_formula(r, 1, "=SUM(Sales[[#This Row],[Price]:[Total]])")
    book.close()
    return path


@pytest.fixture(scope="module")
def dynamic_book(tmp_path_factory):
    path = make_dynamic_workbook(tmp_path_factory.mktemp("dynamic") / "dynamic.xlsx")
    book = read_xlsx(path)
    return path, book, calculate(book)


def test_spilled_arrays_are_computed(dynamic_book):
    _, book, calc = dynamic_book
    sheet = book.sheet("s")
    # XlsxWriter writes a formula using ANCHORARRAY (D2) as a dynamic array too, as Excel does
    assert sheet.dynamic_arrays == {(1, 3), (2, 4), (1, 5), (1, 7)}
    v = calc.values
    assert [v[("s", r, 3)] for r in (1, 2, 3)] == [2.0, 4.0, 6.0]  # saved as 0: computed
    assert sheet.cached[(2, 3)] == 0.0 and sheet.formulas[(2, 3)] == "A1:A3*2"
    assert v[("s", 1, 4)] == 12.0 and v[("s", 2, 4)] == 18.0
    assert v[("s", 3, 4)] == 6.0 and v[("s", 4, 4)] == REF
    assert v[("s", 1, 5)] == 1.0 and v[("s", 2, 6)] == 2.0
    assert [v[("s", r, c)] for r in (1, 2) for c in (7, 8)] == [1.0, 2.0, 2.0, 4.0]


def test_tables_and_structured_references(dynamic_book):
    _, book, calc = dynamic_book
    table = book.tables["SALES"]
    assert (table.sheet, table.first_row, table.last_row, table.totals_rows) == ("s", 1, 5, 1)
    assert table.columns == ("Item", "Price", "Qty", "Total")
    v = calc.values
    # the calculated column is stored as [[#This Row],Price]*Sales[[#This Row],Qty]
    assert [v[("s", r, 13)] for r in (2, 3, 4)] == [6.0, 12.0, 6.5]
    assert v[("s", 1, 15)] == 24.5
    assert v[("s", 2, 15)] == 1.5 + 12 + 3.25 + 4 + 1 + 2
    assert v[("s", 3, 15)] == 4 + 12 + 1  # headers, data, the totals label
    assert v[("s", 4, 15)] == "Qty" and v[("s", 5, 15)] == "Total"
    assert v[("s", 6, 15)] == 16.75 + 7 + 24.5
    assert v[("s", 7, 15)] == VALUE and v[("s", 8, 15)] == REF
    assert v[("s", 9, 15)] == 24.5 and v[("s", 10, 15)] == 12.0 and v[("s", 11, 15)] == 4.0
    assert [v[("other", r, 1)] for r in (2, 3, 4, 5)] == [3.0, 24.0, 6.5, VALUE]
    assert [v[("other", r, 2)] for r in (2, 3, 4)] == [11.5, 25.0, 11.75]


def test_a_spill_that_outgrows_its_saved_range_is_named(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "grow.xlsx"))
    ws = book.add_worksheet("s")
    for r in range(4):
        ws.write_number(r, 0, r + 1.0)
    ws.write_dynamic_array_formula("C1:C2", "=A1:A3*2")  # saved when A1:A3 was two cells
    ws.write_dynamic_array_formula("D1:D4", "=A1:A2*2")  # saved when it was four
    book.close()
    book = read_xlsx(tmp_path / "grow.xlsx")
    with pytest.raises(UnsupportedFormula) as info:
        calculate(book)
    assert info.value.cell == "s!C1" and "spills" in info.value.what
    del book.sheet("s").formulas[(1, 3)], book.sheet("s").array_refs[(1, 3)]
    del book.sheet("s").formulas[(2, 3)]
    v = calculate(book).values
    assert [v[("s", r, 4)] for r in (1, 2, 3, 4)] == [2.0, 4.0, None, None]  # empty past the spill


def test_dynamic_array_metadata_is_read_from_the_file(tmp_path):
    """cm= points through cellMetadata at XLDAPR future metadata with fDynamic=1; a
    t="array" formula without it is a legacy one."""
    metadata = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<metadata xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:xda="http://schemas.microsoft.com/office/spreadsheetml/2017/dynamicarray">'
        '<metadataTypes count="2"><metadataType name="XLRICHVALUE"/><metadataType name="XLDAPR"/>'
        '</metadataTypes><futureMetadata name="XLDAPR" count="2"><bk><extLst><ext uri="x">'
        '<xda:dynamicArrayProperties fDynamic="0" fCollapsed="0"/></ext></extLst></bk><bk><extLst>'
        '<ext uri="x"><xda:dynamicArrayProperties fDynamic="1" fCollapsed="0"/></ext></extLst></bk>'
        '</futureMetadata><cellMetadata count="2"><bk><rc t="2" v="0"/></bk><bk><rc t="2" v="1"/></bk>'
        '</cellMetadata></metadata>')
    rows = ('<row r="1"><c r="A1"><v>1</v></c><c r="B1" cm="2"><f t="array" ref="B1:B2">A1:A2*3</f>'
            '<v>3</v></c><c r="C1" cm="1"><f t="array" ref="C1:C2">A1:A2*4</f><v>4</v></c>'
            '<c r="D1"><f t="array" ref="D1:D2">A1:A2*5</f><v>5</v></c></row>'
            '<row r="2"><c r="A2"><v>2</v></c><c r="B2"><v>6</v></c><c r="C2"><v>8</v></c>'
            '<c r="D2"><v>10</v></c></row>')
    rels = ('<Relationship Id="rIdM" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/sheetMetadata" Target="metadata.xml"/>')
    path = write_package(tmp_path / "meta.xlsx", [("s", rows)], extra_members={"xl/metadata.xml": metadata})
    _add_relationship(path, rels)
    book = read_xlsx(path)
    sheet = book.sheet("s")
    assert sheet.dynamic_arrays == {(1, 2)}
    assert sheet.cached[(2, 2)] == 6.0 and sheet.cached[(2, 4)] == 10.0 and not sheet.constants.keys() - {(1, 1), (2, 1)}
    v = calculate(book).values
    assert [v[("s", 2, c)] for c in (2, 3, 4)] == [6.0, 8.0, 10.0]


def _add_relationship(path, relationship):
    import zipfile
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    rels = members["xl/_rels/workbook.xml.rels"].decode()
    members["xl/_rels/workbook.xml.rels"] = rels.replace("</Relationships>", relationship + "</Relationships>").encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_an_array_formula_filling_too_much_is_refused(tmp_path):
    rows = '<row r="1"><c r="A1"><f t="array" ref="A1:XFD1048576">1</f><v>1</v></c></row>'
    path = write_package(tmp_path / "huge.xlsx", [("s", rows)])
    with pytest.raises(BadWorkbook) as info:
        read_xlsx(path)
    assert "array formula at A1" in str(info.value) and "limit" in str(info.value)


@pytest.mark.parametrize("text, row, col, expected", [
    ("MAX(T[Age])", 1, 1, "MAX('d'!$B$3:$B$5)"),
    ("T[[#This Row],[Age]]/$E$1", 4, 9, "'d'!$B4/$E$1"),
    ("SUMPRODUCT(T[[#This Row],[Age]:[Fare]],$R$4:$S$4)", 5, 9, "SUMPRODUCT('d'!$B5:$C5,$R$4:$S$4)"),
    ("T[[#This Row],[Age]]", 6, 9, "#VALUE!"),
    ("SUM(T[#All])", 1, 9, "SUM('d'!$A$2:$D$6)"),
    ("T[#Headers]", 1, 9, "'d'!$A$2:$D$2"),
    ("T[[#Headers],[#Data],[Age]]", 1, 9, "'d'!$B$2:$B$5"),
    ("T[[#Totals],[Fare]]", 1, 9, "'d'!$C$6"),
    ("T[@Age]+T[@[Age]:[Fare]]+T[@]", 3, 9, "'d'!$B3+'d'!$B3:$C3+'d'!$A3:$D3"),
    ('"T[x]"&T[]&\'it\'\'s\'!A1', 3, 9, '"T[x]"&\'d\'!$A$3:$D$5&\'it\'\'s\'!A1'),
    ("Nope[x]+T[Nope]", 3, 9, "#REF!+#REF!"),
    ("t[[age]:[FARE]]", 3, 9, "'d'!$B$3:$C$5"),
    ("T[[#This Row],Fare]", 4, 9, "'d'!$C4"),
    ("T[Odd '[name']]", 4, 9, "'d'!$D$3:$D$5"),
    ("[@Fare]*[Age]", 4, 4, "'d'!$C4*'d'!$B$3:$B$5"),  # in the table: its own columns
    ("[@Fare]", 4, 9, "#REF!"),  # outside any table
    ("SUM([1]Sheet1!A1)", 4, 9, "SUM([1]Sheet1!A1)"),  # an external reference is no table
])
def test_structured_references_as_a1(text, row, col, expected):
    from xlgen.engine.book import Table
    from xlgen.engine.tables import StructuredRefs
    table = Table("T", "d", 2, 1, 6, 4, ("Item", "Age", "Fare", "Odd [name]"), 1, 1)
    assert StructuredRefs({"T": table}).rewrite(text, row, col, "d") == expected
