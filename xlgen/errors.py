"""Errors the user can act on.

Anything raised as an XlgenError is the user's input at fault (a bad file, a bad
template, an unsupported formula): the CLI prints its one-line message and exits 2.
Everything else is a bug and keeps its traceback.
"""


class XlgenError(Exception):
    """A problem with the user's input, explained in one line."""


class BadWorkbook(XlgenError):
    """The file is not a workbook we can read safely."""


class UnsupportedFormula(XlgenError):
    """A formula uses something the engine cannot evaluate."""

    def __init__(self, cell: str, what: str):
        super().__init__(f"{cell}: {what} is not supported by xlgen's engine")
        self.cell = cell
        self.what = what


class CircularReference(XlgenError):
    """Formulas that depend on themselves."""

    def __init__(self, cells: list[str]):
        shown = " -> ".join(cells[:12]) + (" -> ..." if len(cells) > 12 else "")
        super().__init__(f"circular reference: {shown}")
        self.cells = cells


class TemplateError(XlgenError):
    """A template or a --set override is wrong."""
