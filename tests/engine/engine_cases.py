"""Helpers for the engine tests: hand-written .xlsx packages and formulas' ExcelModel as a
second opinion."""

from __future__ import annotations

import hashlib
import json
import math
import re
import zipfile
from pathlib import Path

from xlgen.engine import Book, ExcelError, Sheet

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
WORKSHEET_TYPE = REL_NS + "/worksheet"


def write_package(path: Path, sheets: list[tuple[str, str]], *, defined_names: str = "",
                  shared_strings: str | None = None, prefix: str = "",
                  absolute_targets: bool = False, extra_members: dict | None = None,
                  skip: tuple = ()) -> Path:
    """Write a minimal but complete .xlsx by hand.

    sheets: (name, inner XML of <sheetData>). prefix: e.g. "x" to write every
    SpreadsheetML element as <x:...> with xmlns:x. skip: member names to leave out.
    """
    p = f"{prefix}:" if prefix else ""
    ns_decl = f'xmlns:{prefix}="{MAIN_NS}"' if prefix else f'xmlns="{MAIN_NS}"'
    members: dict[str, str | bytes] = {}
    overrides = ['<Override PartName="/xl/workbook.xml" ContentType="application/'
                 'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>']
    rels = []
    sheet_entries = []
    for i, (name, data) in enumerate(sheets, 1):
        part = f"xl/worksheets/sheet{i}.xml"
        members[part] = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                         f'<{p}worksheet {ns_decl} xmlns:r="{REL_NS}"><{p}sheetData>{data}'
                         f'</{p}sheetData></{p}worksheet>')
        target = f"/{part}" if absolute_targets else f"worksheets/sheet{i}.xml"
        rels.append(f'<Relationship Id="rId{i}" Type="{WORKSHEET_TYPE}" Target="{target}"/>')
        sheet_entries.append(f'<{p}sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>')
        overrides.append(f'<Override PartName="/{part}" ContentType="application/'
                         'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
    if shared_strings is not None:
        members["xl/sharedStrings.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                                           f'<{p}sst {ns_decl}>{shared_strings}</{p}sst>')
        rels.append(f'<Relationship Id="rIdS" Type="{REL_NS}/sharedStrings" '
                    'Target="sharedStrings.xml"/>')
        overrides.append('<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                         'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>')
    names = f"<{p}definedNames>{defined_names}</{p}definedNames>" if defined_names else ""
    members["xl/workbook.xml"] = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<{p}workbook {ns_decl} xmlns:r="{REL_NS}"><{p}sheets>{"".join(sheet_entries)}'
        f'</{p}sheets>{names}</{p}workbook>')
    members["xl/_rels/workbook.xml.rels"] = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Relationships xmlns="{PKG_REL_NS}">'
        f'{"".join(rels)}</Relationships>')
    members["_rels/.rels"] = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Relationships xmlns="{PKG_REL_NS}">'
        f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>')
    members["[Content_Types].xml"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
        f'ContentType="application/xml"/>{"".join(overrides)}</Types>')
    members.update(extra_members or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if name not in skip:
                archive.writestr(name, data)
    return path


def book_of(*sheets: tuple[str, dict], names: dict | None = None) -> Book:
    """A Book in memory: sheets given as (name, {"A1": 1.0 or "=formula"})."""
    from xlgen.engine.refs import parse_cell
    book = Book()
    for name, cells in sheets:
        sheet = Sheet(name)
        for ref, value in cells.items():
            cell = parse_cell(ref)
            if isinstance(value, str) and value.startswith("="):
                sheet.formulas[cell] = value[1:]
            else:
                sheet.constants[cell] = value
        book.sheets.append(sheet)
    for key, text in (names or {}).items():
        book.names[key] = text
    return book


# --- formulas' ExcelModel as the second opinion --------------------------------------------
_KEY_RE = re.compile(r"^'\[[^\]]+\](.+)'!\$?([A-Z]{1,3})\$?(\d+)$")


def _plain(value):
    """An ExcelModel result -> float | str | bool | None | {'error': code} (JSON-safe)."""
    import numpy as np
    import schedula as sh
    from formulas.tokens.operand import XlError
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else None
    if isinstance(value, XlError):
        return {"error": str(value)}
    if value is sh.EMPTY or value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return str(value)


def excelmodel_values(path: Path, book: Book, overrides: dict, cache=None) -> dict:
    """Every formula cell as formulas.ExcelModel computes it: (SHEET upper, row, col) -> value.

    overrides: (sheet, row, col) -> value fed to ExcelModel as inputs (volatile cells).
    cache: pytest's config.cache, to skip the slow model for a file seen before.
    """
    import formulas
    from xlgen.engine.refs import col_letters, col_number
    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive:  # not docProps: XlsxWriter stamps the time there
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if not info.filename.startswith("docProps/"):
                digest.update(info.filename.encode() + b"\0" + archive.read(info) + b"\0")
    digest = digest.hexdigest()
    cache_key = f"xlgen-engine/excelmodel/{formulas.__version__}/{digest}"
    if cache is not None:
        hit = cache.get(cache_key, None)
        if hit is not None:
            return {tuple(json.loads(k)): v for k, v in hit.items()}
    model = formulas.ExcelModel().loads(str(path)).finish()
    name = Path(path).name
    inputs = {}
    for (sheet, row, col), value in overrides.items():
        if isinstance(value, ExcelError):
            continue
        inputs[f"'[{name}]{sheet.upper()}'!{col_letters(col)}{row}"] = value
    solution = model.calculate(inputs=inputs)
    out = {}
    for key, value in solution.items():
        m = _KEY_RE.match(key)
        if m:
            out[(m.group(1), int(m.group(3)), col_number(m.group(2)))] = _plain(
                value.value if hasattr(value, "value") else value)
    if cache is not None:
        cache.set(cache_key, {json.dumps(list(k)): v for k, v in out.items()})
    return out


def same_value(ours, theirs, rel_tol=1e-9) -> bool:
    if isinstance(theirs, dict):
        return isinstance(ours, ExcelError) and ours.code == theirs["error"]
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return type(ours) is type(theirs) and ours == theirs
    if isinstance(ours, float) and isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=rel_tol, abs_tol=1e-12)
    if ours is None:
        return theirs in (None, 0.0, "")
    return ours == theirs


def formulas_cannot(book: Book, sheet: str, text: str) -> bool:
    """Formulas formulas 1.3.4 gets wrong: it ignores sheet-scoped names and cannot run
    LET inside a named LAMBDA (both checked against Excel semantics elsewhere)."""
    from xlgen.engine.parse import ParseError, parse_tree
    scoped = {name for scope, name in book.names if scope and scope.lower() == sheet.lower()}
    lambdas_with_let = {name for (scope, name), body in book.names.items()
                        if "LAMBDA(" in body.upper() and "LET(" in body.upper()}
    try:
        stack = [parse_tree(text)]
    except ParseError:
        return False
    while stack:
        node = stack.pop()
        kind = node[0]
        if kind == "name" and (node[1] in scoped or node[2] is not None):
            return True
        if kind == "call" and node[1] in lambdas_with_let:
            return True
        if kind in ("op", "call"):
            stack.extend(node[2])
        elif kind == "let":
            stack.extend(value for _, value in node[1])
            stack.append(node[2])
        elif kind == "lambda":
            stack.append(node[2])
    return False


def compare_with_excelmodel(path: Path, book: Book, calc, cache=None, skip=frozenset()):
    """(cells compared, mismatches) between our values and ExcelModel's.

    Volatile cells, and cells formulas cannot evaluate (formulas_cannot), get our value
    as an ExcelModel input: they are not compared, what depends on them is.
    """
    overrides = {}
    for sheet, row, col in calc.volatile:
        overrides[(sheet, row, col)] = calc.values[(sheet, row, col)]
    for sheet in book.sheets:
        for (row, col), text in sheet.formulas.items():
            if formulas_cannot(book, sheet.name, text):
                overrides[(sheet.name, row, col)] = calc.values[(sheet.name, row, col)]
    theirs = excelmodel_values(path, book, overrides, cache)
    compared, mismatches = 0, []
    for (sheet, row, col), ours in calc.values.items():
        if (sheet, row, col) in overrides or (sheet, row, col) in skip:
            continue
        key = (sheet.upper(), row, col)
        if key not in theirs:
            mismatches.append((sheet, row, col, ours, "missing in ExcelModel"))
            continue
        compared += 1
        if not same_value(ours, theirs[key]):
            formula = book.sheet(sheet).formulas.get((row, col))
            mismatches.append((sheet, row, col, formula, ours, theirs[key]))
    return compared, mismatches


def trimmed_copy(book: Book, calc, path: Path, budget: int) -> Path:
    """Write `book` again with XlsxWriter, keeping each sheet's first rows (about `budget`
    formula cells in all) plus the first row holding each other formula shape.

    ExcelModel takes milliseconds a cell; a trimmed copy keeps every shape of a large
    workbook in the comparison. Both engines then compute the same, smaller file.
    """
    import xlsxwriter
    from xlgen.engine.refs import shape_key
    quota = max(1, budget // max(1, len(book.sheets)))
    out = xlsxwriter.Workbook(str(path))
    volatile = set(calc.volatile)
    for sheet in book.sheets:
        ws = out.add_worksheet(sheet.name)
        rows: dict[int, list] = {}
        for (r, c), text in sheet.formulas.items():
            rows.setdefault(r, []).append((c, shape_key(text, r, c)[0]))
        keep, seen, kept = set(), set(), 0
        for r in sorted(rows):
            shapes = {key for _, key in rows[r]}
            if kept < quota or not shapes <= seen:
                keep.add(r)
                kept += len(rows[r])
                seen |= shapes
        for (r, c), value in sheet.constants.items():
            if r in keep or r not in rows:
                if isinstance(value, bool):
                    ws.write_boolean(r - 1, c - 1, value)
                elif isinstance(value, float):
                    ws.write_number(r - 1, c - 1, value)
                elif isinstance(value, ExcelError):
                    ws.write_formula(r - 1, c - 1, "=" + value.code, None, value.code)
                else:
                    ws.write_string(r - 1, c - 1, value)
        for (r, c), text in sheet.formulas.items():
            if r not in keep:
                continue
            cached = calc.values[(sheet.name, r, c)] if (sheet.name, r, c) in volatile else 0
            if (r, c) in sheet.array_refs:
                ws.write_array_formula(sheet.array_refs[(r, c)], "{=" + text + "}", None, cached)
            else:
                ws.write_formula(r - 1, c - 1, "=" + text, None, cached)
    for (scope, name), text in book.names.items():
        if name.startswith("_XL"):  # _xlnm.Print_Area, hidden _xlfn.* placeholders
            continue
        if scope:
            quoted = scope if re.fullmatch(r"\w+", scope) else "'%s'" % scope.replace("'", "''")
            out.define_name(f"{quoted}!{name}", "=" + text)
        else:
            out.define_name(name, "=" + text)
    out.close()
    return path


# --- the edge-case workbook --------------------------------------------------------------
LAMBDA_TEXT = ("_xlfn.LAMBDA(_xlpm.grad,_xlpm.mom,_xlpm.reset,_xlpm.prev,"
               "_xlfn.LET(_xlpm.m,_xlpm.mom*_xlpm.prev+(1-_xlpm.mom)*_xlpm.grad,"
               "IF(_xlpm.reset,_xlpm.grad,_xlpm.m)))")
DIV0, VALUE, NUM, REF, NAME = (ExcelError(c) for c in ("#DIV/0!", "#VALUE!", "#NUM!", "#REF!", "#NAME?"))

# calc!A{row}: (formula, the value Excel gives). All are also compared with formulas'
# ExcelModel, except rows 38, 42 and 43, where formulas is wrong (see formulas_cannot).
EDGE_FORMULAS = [
    ("=data!A1+data!A2*3", -4.5),
    ("=data!A1/data!A3", DIV0),
    ("=A2+1", DIV0),  # a reference to an error propagates it
    ("=data!A4+1", 4.0),  # numeric text coerces
    ("=data!A5+1", VALUE),
    ("=data!A6+1", 2.0),  # TRUE is 1
    ("=data!A7+1", 1.0),  # empty is 0
    ("=data!A7", 0.0),
    ('="a"&"b"&data!A5', "ababc"),
    ("=data!A1>data!A2", True),
    ('="abc"="ABC"', True),
    ("=data!A5>data!A1", True),  # text sorts after numbers
    ("=-data!A1", -1.5),
    ("=data!A1%", 0.015),
    ("=-2^2", 4.0),  # unary minus binds tighter than ^
    ("=2^-1", 0.5),
    ("=data!A1/0+data!A5*1", DIV0),  # errors: left to right
    ("=SUMSQ(data!B1:B10)", 385.0),
    ("=SQRT(data!A9)", 2.0),
    ("=SQRT(data!A2)", NUM),
    ("=MAX(data!B1:B10)-MIN(data!B1:B10)", 9.0),
    ("=AVERAGE(data!B1:B10)", 5.5),
    ("=SQRT(SUM(data!B1:B10))", math.sqrt(55.0)),
    ('=IF(data!A1>1,"big","small")', "big"),
    ("=IF(data!A3,1,2)", 2.0),
    ("=IF(data!A7,1,2)", 2.0),
    ('=IFERROR(A2,"oops")', "oops"),
    ("=ISERROR(A2)", True),
    ("=AND(TRUE,data!A1>0)", True),
    ("=OR(FALSE,data!A3)", False),
    ("=NOT(data!A3)", True),
    ("=ROUND(data!A1*3.14159,2)", 4.71),
    ("=LN(data!A9)", math.log(4.0)),
    ("=EXP(1)", math.e),
    ("=POWER(2,10)", 1024.0),
    ("=ABS(data!A2)", 2.0),
    ("='my sheet'!A1*2", 14.0),
    ("=rate*10", 5.0),  # sheet-scoped 'rate' (calc!$F$1) shadows the workbook's (data!$A$9)
    ("='my sheet'!B1", 40.0),  # there the workbook's 'rate' applies: =rate*10
    ("=bad+1", REF),  # a name pointing at #REF! errors when used
    ("=_xlfn.LET(_xlpm.x,data!A1,_xlpm.y,_xlpm.x*2,_xlpm.x+_xlpm.y)", 4.5),
    ("=AVERAGE_GRAD(data!B3,0.9,FALSE,data!B2)", 0.9 * 2 + 0.1 * 3),
    ("=AVERAGE_GRAD(data!B3,0.9,TRUE,data!B2)", 3.0),
    ("=1E+308*10", NUM),
    ("=data!A10*10", NUM),
    ("=ISBLANK(data!A7)", True),
    ("=ISNUMBER(data!A1)", True),
    ("=data!A4=3", False),  # text "3" is not the number 3
    ("=-data!A4", -3.0),
    ("=IF(data!A1>0,data!B2,data!A5+1)", 2.0),  # the branch not taken is not an error
    ("=E10", None),  # end of the chain below; checked against the NumPy-free formula
    ("=G1*2", 8.0),  # depends on the volatile cell G1 (cached 4)
    ("=SUM(data!B1:B3,data!A1,10)", 17.5),
    ("=SCALE2(data!B2,data!A1)", 2.0 * 2 + 1.5),  # a LAMBDA formulas can evaluate too
]



def make_edge_workbook(path: Path) -> Path:
    """XlsxWriter workbook exercising errors, coercion, names, LET, LAMBDA, shapes, volatile."""
    import xlsxwriter
    book = xlsxwriter.Workbook(str(path))
    data = book.add_worksheet("data")
    calc = book.add_worksheet("calc")
    other = book.add_worksheet("my sheet")
    for row, value in enumerate([1.5, -2.0, 0.0, "3", "abc", True, None, 1e308, 4.0, 1e308]):
        if isinstance(value, bool):
            data.write_boolean(row, 0, value)
        elif isinstance(value, str):
            data.write_string(row, 0, value)
        elif value is not None:
            data.write_number(row, 0, value)
    for row in range(10):
        data.write_number(row, 1, float(row + 1))
    other.write_number(0, 0, 7.0)
    other.write_formula(0, 1, "=rate*10")
    for row, (formula, _) in enumerate(EDGE_FORMULAS):
        calc.write_formula(row, 0, formula)
    # shapes used down a column: relative, absolute and mixed references, a row chain
    calc.write_number(0, 5, 0.5)  # F1
    for row in range(10):
        r = row + 1
        calc.write_formula(row, 2, f"=data!B{r}*$F$1+data!B$1")  # C
        calc.write_formula(row, 3, f"=C{r}-$F1")  # D (column absolute, row relative)
        calc.write_formula(row, 4, "=$F$1" if r == 1 else f"=E{r - 1}+D{r}")  # E chain
    calc.write_formula(0, 6, "=RANDBETWEEN(1,6)", None, 4)  # G1, volatile, cached 4
    book.define_name("rate", "=data!$A$9")
    book.define_name("calc!rate", "=calc!$F$1")
    book.define_name("bad", "=data!#REF!")
    book.define_name("unused_bad", "=data!#REF!")
    book.define_name("AVERAGE_GRAD", "=" + LAMBDA_TEXT)
    book.define_name("SCALE2", "=_xlfn.LAMBDA(_xlpm.x,_xlpm.y,2*_xlpm.x+_xlpm.y)")
    book.close()
    return path


def edge_chain_values() -> dict:
    """calc!C1:E10 of the edge workbook, computed in Python."""
    out = {}
    e = None
    for r in range(1, 11):
        c = r * 0.5 + 1.0
        d = c - 0.5
        e = 0.5 if r == 1 else e + d
        out[("calc", r, 3)], out[("calc", r, 4)], out[("calc", r, 5)] = c, d, e
    return out

SHARED_STRINGS_FOR_MODEL = "<si><t>even</t></si><si><t>odd</t></si>"
