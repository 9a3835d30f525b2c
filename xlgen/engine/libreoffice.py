"""LibreOffice Calc as a second, independent formula engine.

xlgen computes cached values with its own engine; recomputing the same file in LibreOffice
catches the mistakes both could share with nobody else (a wrong formula the engine
mis-evaluates in the same wrong way it was written). LibreOffice runs headless as
`soffice --convert-to xlsx` with a throw-away profile, so nothing is shared between runs.

Precision: LibreOffice writes cached values with 15 significant digits, so values read
back from it differ from full doubles in the last digits. Compare with a relative
tolerance of about 1e-14 at least (never exact equality).

Error codes: LibreOffice 25.2 writes #VALUE! where Excel gives #NUM! for a domain error
(SQRT(-1), LN(0), LOG(-1)); overflow (EXP(1000), 10^400) is #NUM! in both. Compare an
error against "is an error", not against the exact code.

Not supported by LibreOffice 25.2 (see shared/reference/ENGINES.md): inline and named
LAMBDA evaluate to #VALUE! / Err:509; LET, SEQUENCE and RANDARRAY work.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from xlgen.errors import XlgenError

from .book import ExcelError

NOT_INSTALLED = "LibreOffice (soffice) is not installed; run scripts/install-libreoffice"

# By default LibreOffice keeps the cached values it finds in an .xlsx, so a stale file
# would come out stale. OOXMLRecalcMode 0 = "always recalculate" on load.
ALWAYS_RECALCULATE_XCU = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" \
xmlns:xs="http://www.w3.org/2001/XMLSchema" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load">\
<prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def soffice_path() -> str | None:
    """The soffice executable on PATH, or None when LibreOffice is not installed."""
    return shutil.which("soffice")


def recalculate_with_libreoffice(
    path: str | os.PathLike, timeout: float = 180
) -> dict[str, dict[tuple[int, int], object]]:
    """Recalculate every formula of the workbook at `path` in LibreOffice and return the values.

    Returns {sheet name: {(row, col): value}} for every non-empty cell, 1-based, from the
    converted file's saved values: numbers, strings, booleans, and Excel errors as strings
    such as '#NUM!'. The input file is not modified.
    Values carry 15 significant digits: compare with rtol of about 1e-14 or looser.
    """
    soffice = soffice_path()
    if soffice is None:
        raise XlgenError(NOT_INSTALLED)
    source = Path(path)
    if not source.is_file():
        raise XlgenError(f"{source}: no such file")

    with tempfile.TemporaryDirectory(prefix="xlgen-lo-") as work_dir:
        work = Path(work_dir)
        profile = work / "profile"
        (profile / "user").mkdir(parents=True)
        (profile / "user" / "registrymodifications.xcu").write_text(ALWAYS_RECALCULATE_XCU)
        out_dir = work / "out"
        out_dir.mkdir()
        # a plain name of our own: the original may contain characters soffice mangles
        input_copy = work / ("book" + source.suffix.lower())
        shutil.copyfile(source, input_copy)

        command = [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(out_dir),
            str(input_copy),
        ]
        stderr = _run(command, timeout, source)

        converted = out_dir / "book.xlsx"
        if not converted.is_file():
            detail = _last_meaningful_line(stderr)
            raise XlgenError(
                f"LibreOffice produced no output for {source}" + (f": {detail}" if detail else "")
            )
        return _read_values(converted)


def _run(command: list[str], timeout: float, source: Path) -> str:
    """Run soffice in its own process group so a timeout kills soffice.bin too; return stderr."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise XlgenError(f"LibreOffice timed out after {timeout:g} s recalculating {source}") from None
    return stderr


def _last_meaningful_line(stderr: str) -> str:
    """The last stderr line that says something (javaldx's complaint is harmless noise)."""
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and "javaldx" not in line
    ]
    return lines[-1] if lines else ""


def _read_values(converted: Path) -> dict[str, dict[tuple[int, int], object]]:
    """LibreOffice's results, read by xlgen's own reader (openpyxl refuses some of the
    parts LibreOffice writes, such as custom autofilters in the course's titanic file)."""
    from .reader import read_xlsx

    try:
        book = read_xlsx(converted)
    except XlgenError as error:
        raise XlgenError(f"LibreOffice's output cannot be read: {error}") from None
    values: dict[str, dict[tuple[int, int], object]] = {}
    for sheet in book.sheets:
        cells = {**sheet.constants, **sheet.cached}
        for cell, value in cells.items():
            if isinstance(value, ExcelError):
                cells[cell] = value.code  # errors as text, as openpyxl gives them
        values[sheet.name] = cells
    return values
