"""docs/images/*.png: the examples' main charts as LibreOffice draws them.

Each template is built as in workbooks/ but printed charts-only (one page per sheet:
its charts, or a blank cell), exported to PDF by LibreOffice and the chosen sheets'
pages turned into PNGs cropped to what is drawn. Run by scripts/screenshots.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from xlgen import render
from xlgen.engine import calculate
from xlgen.sheets import plan_workbook
from xlgen.templates import load_template
from xlgen.writer import write_workbook

ROOT = Path(__file__).resolve().parent.parent
# template -> the sheets whose charts tell its story
MAIN_CHARTS = {
    "graddesc": ["basic", "adam_ann"],
    "two-neuron": ["collapse", "compare", "lr_sweep", "derivatives"],
    "average-grad": ["smoothing_plain"],
}


def screenshots(out_dir: Path = ROOT / "docs" / "images") -> list[Path]:
    missing = render.missing_tools()
    if missing:
        raise SystemExit(f"screenshots: {', '.join(missing)} not installed "
                         "(scripts/install-libreoffice, scripts/install-poppler)")
    out_dir.mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory(prefix="xlgen-shots-") as work:
        for template_name, sheets in MAIN_CHARTS.items():
            plan = plan_workbook(load_template(template_name))
            book = plan.to_book()
            workbook = Path(work) / f"{template_name}.xlsx"
            write_workbook(plan, book, calculate(book).values, workbook, charts_only=True)
            pdf = render.to_pdf(workbook, Path(work))
            names = [sheet.name for sheet in plan.sheets]
            if render.pages(pdf) != len(names):
                raise SystemExit(f"screenshots: {pdf.name} has {render.pages(pdf)} pages, expected one a sheet")
            for sheet in sheets:
                png = out_dir / f"{template_name}-{sheet}.png"
                render.page_png(pdf, names.index(sheet) + 1, png)
                made.append(png)
                print(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)
    return made


if __name__ == "__main__":
    screenshots(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "images")
