"""xlgen's formula engine: read a workbook, compute every formula cell.

    book = read_xlsx(path)                  # streaming, refuses hostile files (BadWorkbook)
    calc = calculate(book, progress=None)   # UnsupportedFormula / CircularReference
    calc.values[("basic", 4, 5)]            # every formula cell: float | str | bool | ExcelError
    calc.order, calc.volatile, calc.saved, calc.constant, calc.value(sheet, row, col)

How: formula cells are grouped by shape (the formula written relative to its cell); each
shape is tokenized once by the `formulas` package's parser and turned into a generated
Python function; cells run in dependency order with no recursion. Functions are the
`formulas` implementations, except a few run natively for speed or laziness (IF, IFERROR,
IFNA, SQRT, ABS, EXP, LN, LOG, LOG10, ROW, COLUMN, ISFORMULA, MMULT, SUMPRODUCT,
TRANSPOSE, OFFSET, SUM/SUMSQ/COUNT/AVERAGE/MAX/MIN over plain numbers), and ^ follows
Excel (0^0 and overflow are #NUM!).

Excel Tables (xl/tables/*.xml, in Book.tables) and their structured references
(`Table1[Age]`, `Table1[[#This Row],[SibSp]:[Ones]]`, `[#Headers]`, `[#Data]`, `[#All]`,
`[#Totals]`, `[@Age]`, a reference without a table name inside a table) are rewritten as
the A1 references they stand for before parsing (tables.py). An array formula (t="array")
computes its whole result: the cells of its range other than the anchor are formula
cells too (Sheet.array_members(); the reader lists them in `formulas` with the anchor's
text and their saved values in `cached`). A legacy Ctrl+Shift+Enter range repeats a
one-row or one-column result and shows #N/A past it; a dynamic array (marked by the
file's XLDAPR cell metadata, Sheet.dynamic_arrays) is empty past its result, and `A1#`
(stored `_xlfn.ANCHORARRAY(A1)`) is its spill range. Functions whose parameters are
arrays (SUMPRODUCT, MMULT, INDEX's first, MATCH's second...) evaluate their argument
expressions whole. OFFSET is computed from its inputs (not taken from the cache, not
counted volatile); a cell whose OFFSET lands on cells not computed yet waits for them.

Volatility is decided by evaluation: calc.volatile lists the cells where a volatile
function (RAND, NOW, OFFSET...) actually ran, not those naming one in a branch not taken
or in a LAMBDA body; only they keep the file's saved value (calc.saved). calc.constant
lists formula cells that read no cell (=1/3, =FALSE()).

Known limits:
- INDIRECT of a computed text is only read from the file's cached value.
- A spill that would now be larger than the range the file saved is refused (xlgen does
  not move spills). Data tables (t="dataTable") are read as constants.
- Not evaluated (UnsupportedFormula): inline LAMBDA(...)(...), _xleta. functions,
  recursive LAMBDAs, reference operators (A1:INDEX(...), unions, intersections), OFFSET
  of a computed reference (OFFSET(INDEX(...),...)), SUBTOTAL, external-workbook
  references, R1C1 text.
- Relative references inside defined names count from A1, as Excel stores them.
- Ranges larger than 65,536 cells are clipped to the sheet's used area.
- A range used as an operand in an ordinary cell is implicitly intersected with the
  cell's row or column (legacy Excel); array formulas keep whole arrays.
- Circular references are errors (no iterative calculation).
"""

from .book import Book, ExcelError, Sheet
from .evaluate import Calculation, calculate

__all__ = ["Book", "Sheet", "ExcelError", "read_xlsx", "calculate", "Calculation"]


def __getattr__(name):
    """read_xlsx, imported on first use: a build that writes a file never reads one."""
    if name == "read_xlsx":
        from .reader import read_xlsx
        return read_xlsx
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
