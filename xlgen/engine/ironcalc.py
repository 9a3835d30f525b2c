"""IronCalc as a third recompute engine: Rust, from PyPI, with LAMBDA where LibreOffice has none.

Like LibreOffice it shares no code with xlgen's engine, so a formula both would
mis-evaluate the same way is unlikely; unlike LibreOffice it runs in-process (no
start-up, full doubles, no 15-digit rounding) and evaluates named LAMBDAs.

Known difference (shared/reference/ENGINES.md): on load it drops brackets it thinks
redundant, `=(E27*G27+(F27+0.01)-B27)^2` becomes `=(E27*G27+F27+0.01-B27)^2`, so a
sum can round one ulp differently from Excel (`=0.1+(0.2-0.3)`: 5.55e-17, Excel
2.78e-17). Verify judges its values with the same tolerance as xlgen's engine; chaotic
rows may part ways as they do with LibreOffice. `10^400` gives #DIV/0! (Excel #NUM!):
compare errors as "is an error", not by code.
"""

from __future__ import annotations

import os
from pathlib import Path

from xlgen.engine.book import ExcelError
from xlgen.errors import XlgenError

NOT_INSTALLED = "IronCalc is not installed; pip install 'xlgen[ironcalc]' (or: pip install ironcalc)"


def recalculate_with_ironcalc(path: str | os.PathLike) -> dict[str, dict[tuple[int, int], object]]:
    """Load the workbook at `path` into IronCalc, evaluate every formula, return the values.

    Returns {sheet name: {(row, col): value}} for every formula cell, 1-based: floats,
    strings, booleans and ExcelError (the shape `recalculate_with_libreoffice`
    returns, with errors told apart from text). The file is not modified.
    """
    try:
        import ironcalc
    except ImportError:
        raise XlgenError(NOT_INSTALLED) from None
    source = Path(path)
    if not source.is_file():
        raise XlgenError(f"{source}: no such file")
    try:
        model = ironcalc.load_from_xlsx(str(source), "en", "UTC")
        model.evaluate()
    except Exception as error:  # its own WorkbookError, or a panic surfaced as an exception
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise XlgenError(f"IronCalc could not load or evaluate {source}: {detail}") from None
    names = [sheet["name"] for sheet in model.get_worksheets_properties()]
    error_type = ironcalc.CellType.ErrorValue
    values: dict[str, dict[tuple[int, int], object]] = {name: {} for name in names}
    for sheet_index, row, col in model.get_all_cells():
        if model.get_cell_formula(sheet_index, row, col) is None:
            continue
        value = model.get_cell_value(sheet_index, row, col)
        if model.get_cell_type(sheet_index, row, col) == error_type:
            value = ExcelError(value)
        values[names[sheet_index]][(row, col)] = value
    return values
