"""What a reader sees: LibreOffice's PDF of a workbook, its text layer and pictures.

Used by the render test (tests/test_render.py: no `###`, every sheet's title printed)
and by scripts/screenshots (the charts as PNGs for the README). LibreOffice runs with a
throw-away profile, as `xlgen verify --engine libreoffice` does; pdftotext and pdftoppm
come from poppler-utils (scripts/install-poppler).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from xlgen.errors import XlgenError

TOOLS = ("soffice", "pdftotext", "pdftoppm", "pdfinfo")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _run(command: list, timeout: float = 300) -> subprocess.CompletedProcess:
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise XlgenError(f"{command[0]} timed out after {timeout:g} s") from None
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def to_pdf(workbook: Path, out_dir: Path, timeout: float = 300) -> Path:
    """LibreOffice's PDF export of `workbook` (every sheet, its print settings) in `out_dir`."""
    workbook, out_dir = Path(workbook), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="xlgen-render-") as profile:
        result = _run(["soffice", f"-env:UserInstallation={Path(profile).as_uri()}", "--headless", "--norestore",
                       "--convert-to", "pdf", "--outdir", str(out_dir), str(workbook)], timeout)
    pdf = out_dir / (workbook.stem + ".pdf")
    if not pdf.is_file():
        raise XlgenError(f"LibreOffice made no PDF of {workbook}: {result.stderr.decode(errors='replace')[-300:]}")
    return pdf


def pages(pdf: Path) -> int:
    info = _run(["pdfinfo", str(pdf)]).stdout.decode()
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def text(pdf: Path, first: int | None = None, last: int | None = None) -> str:
    """The PDF's text layer (pdftotext), of pages first..last or all."""
    command = ["pdftotext", "-layout"]
    if first:
        command += ["-f", str(first), "-l", str(last or first)]
    return _run(command + [str(pdf), "-"]).stdout.decode(errors="replace")


def page_png(pdf: Path, page: int, png: Path, dpi: int = 110, margin: int = 12) -> Path:
    """Page `page` of `pdf` as a PNG, cropped to what is drawn on it (plus `margin` pixels)."""
    png = Path(png)
    with tempfile.TemporaryDirectory(prefix="xlgen-png-") as work:
        grey = Path(work) / "page"
        _run(["pdftoppm", "-gray", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile",
              str(pdf), str(grey)])
        box = _drawn_box(Path(str(grey) + ".pgm"))
    command = ["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile"]
    if box:
        left, top, right, bottom = box
        left, top = max(0, left - margin), max(0, top - margin)
        command += ["-x", str(left), "-y", str(top), "-W", str(right - left + 2 * margin),
                    "-H", str(bottom - top + 2 * margin)]
    _run(command + [str(pdf), str(png.with_suffix(""))])
    return png


def _drawn_box(pgm: Path) -> tuple | None:
    """(left, top, right, bottom) of the pixels that are not white in a binary PGM."""
    data = pgm.read_bytes()
    fields, position = [], 0
    while len(fields) < 4:                       # P5, width, height, maxval
        while data[position:position + 1].isspace():
            position += 1
        start = position
        while not data[position:position + 1].isspace():
            position += 1
        fields.append(data[start:position])
    width, height = int(fields[1]), int(fields[2])
    pixels = data[position + 1:]
    rows = [y for y in range(height) if min(pixels[y * width:(y + 1) * width]) < 245]
    if not rows:
        return None
    columns = [x for x in range(width) if min(pixels[x::width]) < 245]
    return columns[0], rows[0], columns[-1], rows[-1]
