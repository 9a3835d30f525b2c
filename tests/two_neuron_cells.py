"""Finding cells of the two-neuron workbook by their headers, so tests say what they
mean ("collapse, new c, step 27") instead of a column letter."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import openpyxl

MODEL_HEADER_ROW = 24          # model and derivative sheets: the block's header row
PER_EPOCH = 29


@lru_cache(maxsize=None)
def _headers(path: str, sheet: str, row: int) -> dict:
    book = openpyxl.load_workbook(path, read_only=True)
    cells = next(book[sheet].iter_rows(min_row=row, max_row=row))
    found = {}
    for cell in cells:
        if cell.value is not None:
            found.setdefault(cell.value, cell.column_letter)
    book.close()
    return found


def block_cell(path: Path, sheet: str, header: str, step: int, header_row: int = MODEL_HEADER_ROW) -> str:
    """The cell of column `header` in the block's row for `step` (1-based, epochs back to back)."""
    return f"{_headers(str(path), sheet, header_row)[header]}{header_row + step}"


def table_cell(path: Path, sheet: str, header_row: int, header: str, row_offset: int) -> str:
    """A cell of a small table: column `header` of its header row, `row_offset` rows below."""
    return f"{_headers(str(path), sheet, header_row)[header]}{header_row + row_offset}"


def sweep_block_header_row(runs: int, run: int, epochs: int = 3, table_row: int = 4) -> int:
    """Header row of sweep run `run`'s block (xlgen.sheets.runs layout)."""
    first = table_row + runs + 21
    return first + 1 + (run - 1) * (PER_EPOCH * epochs + 1 + 2)
