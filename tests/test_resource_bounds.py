"""Workbooks at Excel's limits: each verifies (or is refused in one line) within 60 s
of CPU and 2 GiB.

The files are written here by a small raw-XML writer (seconds, not the minutes a real
writer would take), with saved values computed here in Python: verify recomputes every
formula and lists any saved value that differs (`stale_cached_values`), so an empty
list proves the engine got every cell right, not merely that it finished. Each verify
runs as a real process; its CPU time and peak memory come from wait4. CPU time, not
wall time, is bounded: the test machine is shared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
CPU_LIMIT = 60.0
MEMORY_LIMIT = 2 << 30


def write_xlsx(path: Path, sheets) -> Path:
    """sheets: (name, iterable of row XML strings). Deflate level 1: speed over size."""
    entries, rels, types = [], [], []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for i, (name, rows) in enumerate(sheets, 1):
            with archive.open(f"xl/worksheets/sheet{i}.xml", "w", force_zip64=True) as part:
                part.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="{MAIN}"><sheetData>'.encode())
                chunk = []
                for row in rows:
                    chunk.append(row)
                    if len(chunk) == 10_000:
                        part.write("".join(chunk).encode())
                        chunk = []
                part.write(("".join(chunk) + "</sheetData></worksheet>").encode())
            entries.append(f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>')
            rels.append(f'<Relationship Id="rId{i}" Type="{RELS}/worksheet" Target="worksheets/sheet{i}.xml"/>')
            types.append(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
                         'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
        archive.writestr("xl/workbook.xml", f'<?xml version="1.0" encoding="UTF-8"?>\n<workbook xmlns="{MAIN}" '
                         f'xmlns:r="{RELS}"><sheets>{"".join(entries)}</sheets></workbook>')
        archive.writestr("xl/_rels/workbook.xml.rels", f'<?xml version="1.0" encoding="UTF-8"?>\n'
                         f'<Relationships xmlns="{PACKAGE_RELS}">{"".join(rels)}</Relationships>')
        archive.writestr("_rels/.rels", f'<?xml version="1.0" encoding="UTF-8"?>\n<Relationships '
                         f'xmlns="{PACKAGE_RELS}"><Relationship Id="rId1" Type="{RELS}/officeDocument" '
                         'Target="xl/workbook.xml"/></Relationships>')
        archive.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8"?>\n<Types xmlns="http://'
                         'schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" '
                         'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                         '<Default Extension="xml" ContentType="application/xml"/><Override '
                         'PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
                         f'officedocument.spreadsheetml.sheet.main+xml"/>{"".join(types)}</Types>')
    return path


def verify_process(path: Path) -> dict:
    """`xlgen verify PATH --json` as a real process: exit code, report, CPU s, peak bytes."""
    out_path, err_path = path.with_suffix(".out"), path.with_suffix(".err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "xlgen.cli", "verify", str(path), "--json", "--quiet"],
                                   cwd=ROOT, stdout=out, stderr=err, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(), err_path.read_text()
    result = {"code": process.returncode, "stderr": stderr, "cpu": usage.ru_utime + usage.ru_stime,
              "memory": usage.ru_maxrss * 1024, "report": json.loads(stdout) if stdout.strip() else None}
    print(f"{path.name}: exit {result['code']}, {result['cpu']:.1f} s CPU, {result['memory'] >> 20} MiB")
    return result


def within_bounds(result: dict) -> dict:
    assert result["cpu"] < CPU_LIMIT, f"{result['cpu']:.1f} s of CPU"
    assert result["memory"] < MEMORY_LIMIT, f"{result['memory'] >> 20} MiB"
    assert "Traceback" not in result["stderr"]
    if result["code"] == 2:
        assert len(result["stderr"].splitlines()) == 1 and result["stderr"].startswith("xlgen: error: ")
    else:
        assert result["code"] in (0, 1) and result["stderr"] == ""
    return result


def computed_right(result: dict, formula_cells: int) -> None:
    """Verify recomputed every formula and every saved value (ours) agrees with it."""
    report = result["report"]
    assert result["code"] == 1 and report is not None  # no sheet of a known layout: nothing checked
    assert report["formula_cells"] == formula_cells
    assert report["stale_cached_values"] == []
    assert report["formula_cells_without_cached_value"] == 0


def test_a_chain_of_a_million_formula_cells(tmp_path):
    """A1 = 1, A2 = A1+1, ... A1000000: one shared formula, each cell waits for the last."""
    n = 1_000_000

    def rows():
        yield '<row r="1"><c r="A1"><v>1</v></c></row>'
        yield f'<row r="2"><c r="A2"><f t="shared" ref="A2:A{n}" si="0">A1+1</f><v>2</v></c></row>'
        for r in range(3, n + 1):
            yield f'<row r="{r}"><c r="A{r}"><f t="shared" si="0"/><v>{r}</v></c></row>'

    path = write_xlsx(tmp_path / "chain.xlsx", [("chain", rows())])
    computed_right(within_bounds(verify_process(path)), n - 1)


def test_ten_thousand_sheets(tmp_path):
    """Each sheet adds one to the sheet before it: a chain through 10,000 sheets."""
    n = 10_000
    sheets = [("S1", ['<row r="1"><c r="A1"><v>1</v></c><c r="B1"><f>A1*2</f><v>2</v></c></row>'])]
    for i in range(2, n + 1):
        sheets.append((f"S{i}", [f'<row r="1"><c r="A1"><f>S{i - 1}!A1+1</f><v>{i}</v></c>'
                                 f'<c r="B1"><f>A1*2</f><v>{2 * i}</v></c></row>']))
    path = write_xlsx(tmp_path / "sheets.xlsx", sheets)
    computed_right(within_bounds(verify_process(path)), 2 * n - 1)


def longest_deepest_formula() -> tuple[str, float]:
    """8,192 characters, 64 levels of nesting (Excel's limits), and its value when A1 = 1."""
    openers = ["SUM(", "IF(A1>0,", "ABS(", "MAX(0,", "IFERROR(", "ROUND(", "SQRT(", "(", ]
    closers = {"SUM(": ")", "IF(A1>0,": ",0)", "ABS(": ")", "MAX(0,": ")", "IFERROR(": ",-1)",
               "ROUND(": ",6)", "SQRT(": ")^2", "(": ")"}
    levels = [openers[i % len(openers)] for i in range(64)]
    head, tail = "".join(levels), "".join(closers[o] for o in reversed(levels))
    room = 8192 - len(head) - len(tail)
    terms = (room + 1) // 3  # "A1+A1+...": 3 characters a term, less one
    inner = ["", "+", "1*"][room - (3 * terms - 1)] + "+".join(["A1"] * terms)
    formula = head + inner + tail
    assert len(formula) == 8192 and formula.count("(") == formula.count(")")
    return formula, float(terms)


def test_a_formula_at_excels_length_and_nesting_limits(tmp_path):
    formula, expected = longest_deepest_formula()
    from xlgen.engine import Book, Sheet, calculate
    sheet = Sheet("limits")
    sheet.constants[(1, 1)] = 1.0
    sheet.formulas[(1, 2)] = formula
    book = Book()
    book.sheets.append(sheet)
    assert calculate(book).values[("limits", 1, 2)] == pytest.approx(expected, rel=1e-12)
    row = f'<row r="1"><c r="A1"><v>1</v></c><c r="B1"><f>{formula}</f><v>{expected!r}</v></c></row>'
    path = write_xlsx(tmp_path / "limits.xlsx", [("limits", [row])])
    computed_right(within_bounds(verify_process(path)), 1)


def test_whole_columns_on_every_row(tmp_path):
    """50,000 rows, each reading whole columns (SUM, MAX, COUNT over A:A and B:B)."""
    n = 50_000
    total = n * (n + 1) / 2
    b = [r / total + n for r in range(1, n + 1)]
    b_sum = 0.0
    for value in b:
        b_sum += value

    def rows():
        for r in range(1, n + 1):
            c = b[r - 1] * n + b_sum
            yield (f'<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}"><f>A{r}/SUM($A:$A)+MAX(A:A)</f>'
                   f'<v>{b[r - 1]!r}</v></c><c r="C{r}"><f>B{r}*COUNT(B:B)+SUM(B:B)</f><v>{c!r}</v></c></row>')

    path = write_xlsx(tmp_path / "columns.xlsx", [("columns", rows())])
    computed_right(within_bounds(verify_process(path)), 2 * n)
