"""xlgen from Python (a notebook): build, verify, templates.

A thin layer over what the command line runs. Errors are exceptions (xlgen.XlgenError
for anything the user can fix: a bad template, an existing file, a file that is no
workbook), never an exit; a workbook that disagrees with the reference is not an error
but a report whose `ok` is False.
"""

from __future__ import annotations

import html
import tomllib
from pathlib import Path
from typing import NamedTuple

ENGINES = ("xlgen", "libreoffice", "ironcalc")
SHOWN_MISMATCHES = 10


def _setting(key: str, value) -> str:
    """A keyword argument as `--set key=value` text (TOML, or the plain text of a word)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, str):
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        text = value if parsed == value else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        from xlgen.errors import TemplateError
        raise TemplateError(f"{key}: only single values can be set (a number, text, true or false), got {value!r}")
    return f"{key.replace('__', '.')}={text}"


def build(template: str, path, *, force: bool = False, progress=None, **settings) -> Path:
    """Build `template` (a name from templates(), or a .toml file) into `path`.

    Keyword settings are the command line's --set: `epochs=20, learning_rate=0.001`;
    a dotted key with `__` for the dots (`sheets__basic__learning_rate=0.01`). An
    existing file is replaced only with force=True. Returns the path written.
    """
    from xlgen.build import build as build_workbook
    overrides = [_setting(key, value) for key, value in settings.items()]
    return build_workbook(str(template), Path(path), overrides, force=force, progress=progress)


class VerifyReport:
    """What `verify` found: `ok`, `first_divergence`, `mismatches`, `cells_checked`, ...

    Shown in Jupyter as the verdict and a table of the first mismatches; str() is the
    command line's text report; `as_json()` its --json. `report` is the full report
    (every field the command line uses).
    """

    def __init__(self, report, strict: bool = False):
        self.report = report
        self.strict = strict

    @property
    def ok(self) -> bool:
        """Every checked cell agrees (and, strict, every formula cell was checked and no
        saved value is stale)."""
        return self.report.strict_ok if self.strict else self.report.ok

    @property
    def first_divergence(self) -> str | None:
        """The first cell, in calculation order, that disagrees with the reference."""
        return self.report.mismatches[0].cell if self.report.mismatches else None

    @property
    def mismatches(self) -> list:
        return list(self.report.mismatches)

    @property
    def cells_checked(self) -> int:
        return self.report.cells_checked

    @property
    def formula_cells(self) -> int:
        return self.report.formula_cells

    @property
    def path(self) -> str:
        return self.report.path

    def __getattr__(self, name):   # unchecked, stale, skipped, lint, notes, checks ...
        if name == "report":
            raise AttributeError(name)
        return getattr(self.report, name)

    def __bool__(self) -> bool:
        return self.ok

    def as_json(self) -> dict:
        out = self.report.as_json()
        out["ok"] = self.ok
        out["strict"] = self.strict
        return out

    def verdict(self) -> str:
        report = self.report
        if self.ok:
            return (f"OK: {report.cells_checked:,} of {report.formula_cells:,} formula cells checked "
                    f"agree with the NumPy reference")
        if report.mismatches:
            return (f"FAIL: {len(report.mismatches):,} of {report.cells_checked:,} checked cells disagree; "
                    f"the first in calculation order is {self.first_divergence}")
        if report.lint:
            return f"FAIL: the values agree, but {len(report.lint):,} formulas are stored as Excel would not read them"
        if not report.cells_checked:
            return "FAIL: no sheet of a known layout was found, so nothing was checked"
        return "FAIL (strict): " + "; ".join(report.warnings)

    def __str__(self) -> str:
        from xlgen.verify.report import text_report
        return text_report(self.report, strict=self.strict)

    def __repr__(self) -> str:
        return f"<xlgen verify {self.report.path}: {self.verdict()}>"

    def _repr_html_(self) -> str:
        from xlgen.verify.core import json_value
        colour = "#006100" if self.ok else "#9C0006"
        background = "#C6EFCE" if self.ok else "#FFC7CE"
        parts = [f'<div><p style="color:{colour};background:{background};padding:4px 8px;font-weight:bold">'
                 f"{html.escape(self.verdict())}</p>",
                 f"<p>{html.escape(self.report.path)} (engine: {html.escape(self.report.engine)})</p>"]
        if self.report.mismatches:
            rows = "".join(
                f"<tr><td>{html.escape(m.cell)}</td><td><code>={html.escape(m.formula)}</code></td>"
                f"<td>{html.escape(repr(json_value(m.expected)))}</td><td>{html.escape(repr(json_value(m.actual)))}</td></tr>"
                for m in self.report.mismatches[:SHOWN_MISMATCHES])
            more = len(self.report.mismatches) - SHOWN_MISMATCHES
            parts.append("<table><thead><tr><th>cell</th><th>formula</th><th>expected (NumPy)</th>"
                         f"<th>actual (recomputed)</th></tr></thead><tbody>{rows}</tbody></table>")
            if more > 0:
                parts.append(f"<p>... and {more:,} more (<code>.mismatches</code>)</p>")
        for label, items in (("not checked", self.report.unchecked), ("stale saved values", self.report.stale)):
            if items:
                first = items[0] if isinstance(items[0], str) else items[0].cell
                parts.append(f"<p>{len(items):,} {label}; first: {html.escape(first)}</p>")
        return "".join(parts) + "</div>"


def verify(path, engine: str = "xlgen", strict: bool = False, progress=None) -> VerifyReport:
    """Recompute every formula of the workbook at `path` and check it against the NumPy
    reference. engine "libreoffice" or "ironcalc" has that engine recompute instead.
    strict: also fail when a formula cell was not checked or a saved value is stale
    (the command line's --strict)."""
    from xlgen.errors import XlgenError
    if engine not in ENGINES:
        raise XlgenError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    from xlgen.verify import verify_file
    return VerifyReport(verify_file(path, progress=progress, engine=engine), strict=strict)


class TemplateInfo(NamedTuple):
    name: str
    title: str
    sheets: tuple


def templates() -> list[TemplateInfo]:
    """The templates build() takes by name, with their titles and sheets."""
    from xlgen.templates import available_templates, load_template
    found = []
    for name in available_templates():
        template = load_template(name)
        data = ("data",) if template.data is not None else ()
        found.append(TemplateInfo(name, template.title, ("about", *data, *(s.name for s in template.sheets))))
    return found
