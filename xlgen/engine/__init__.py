"""xlgen's formula engine: read a workbook, compute every formula cell.

    book = read_xlsx(path)                  # streaming, refuses hostile files (BadWorkbook)
    calc = calculate(book, progress=None)   # UnsupportedFormula / CircularReference
    calc.values[("basic", 4, 5)]            # every formula cell: float | str | bool | ExcelError
    calc.order, calc.volatile, calc.saved, calc.constant, calc.value(sheet, row, col)

How: formula cells are grouped by shape (the formula written relative to its cell); each
shape is tokenized once by the `formulas` package's parser and turned into a generated
Python function; cells run in dependency order with no recursion. Functions are the
`formulas` implementations, except a few run natively for speed or laziness (IF, IFERROR,
IFNA, SQRT, ABS, EXP, LN, ROW, COLUMN, ISFORMULA, and SUM/SUMSQ/COUNT/AVERAGE/MAX/MIN
over plain numbers), and ^ follows Excel (0^0 and overflow are #NUM!).

Volatility is decided by evaluation: calc.volatile lists the cells where a volatile
function (RAND, NOW, OFFSET...) actually ran, not those naming one in a branch not taken
or in a LAMBDA body; only they keep the file's saved value (calc.saved). calc.constant
lists formula cells that read no cell (=1/3, =FALSE()).

Known limits:
- OFFSET and INDIRECT of a computed text are only read from the file's cached value.
- Spilled dynamic arrays: the anchor gets the top-left value; spilled cells are read as
  constants (their cached values). Data tables (t="dataTable") are read as constants.
- Not evaluated (UnsupportedFormula): inline LAMBDA(...)(...), _xleta. functions,
  recursive LAMBDAs, reference operators (A1:INDEX(...), unions, intersections),
  table structured references, external-workbook references, R1C1 text.
- Relative references inside defined names count from A1, as Excel stores them.
- Ranges larger than 65,536 cells are clipped to the sheet's used area.
- A range used as an operand in an ordinary cell is implicitly intersected with the
  cell's row or column (legacy Excel); array formulas keep whole arrays.
- Circular references are errors (no iterative calculation).
"""

from .book import Book, ExcelError, Sheet
from .evaluate import Calculation, calculate
from .reader import read_xlsx

__all__ = ["Book", "Sheet", "ExcelError", "read_xlsx", "calculate", "Calculation"]
