"""xlgen's formula engine: read a workbook, compute every formula cell.

    book = read_xlsx(path)
    calc = calculate(book)
    calc.values[("basic", 4, 5)]
"""

from .book import Book, ExcelError, Sheet
from .evaluate import Calculation, calculate
from .reader import read_xlsx

__all__ = ["Book", "Sheet", "ExcelError", "read_xlsx", "calculate", "Calculation"]
