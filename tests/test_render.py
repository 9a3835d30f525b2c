"""Seen, not assumed: LibreOffice (fresh profile) prints every example to PDF and the
PDF's text layer shows what a reader gets.

- no `###` anywhere: every number fits its column in LibreOffice's font (DejaVu Sans,
  wider than Excel's Calibri);
- every sheet's title (its name, in the page header) is printed;
- the PDF has exactly the pages the workbook plans (one page wide, page breaks between
  charts): a column spilling onto a second page across, or a break LibreOffice had to
  add inside a chart, would add a page;
- a LAMBDA sheet's banner is printed at the top of its first page.

About 40 s: one LibreOffice run per workbook. Needs soffice and poppler-utils
(scripts/install-libreoffice, scripts/install-poppler; scripts/test installs both).
"""

from __future__ import annotations

import re
import zipfile

import pytest

from tests.conftest import ROOT
from tests.workbook_files import sheet_parts
from xlgen import render

WORKBOOKS = sorted((ROOT / "workbooks").glob("*.xlsx"))

pytestmark = pytest.mark.skipif(
    bool(render.missing_tools()),
    reason=f"{', '.join(render.missing_tools())} not installed (scripts/install-libreoffice, scripts/install-poppler)")


@pytest.fixture(scope="module", params=WORKBOOKS, ids=[path.name for path in WORKBOOKS])
def printed(request, tmp_path_factory):
    """(workbook, PDF, its text page by page)."""
    pdf = render.to_pdf(request.param, tmp_path_factory.mktemp("pdf"))
    count = render.pages(pdf)
    return request.param, pdf, [render.text(pdf, page) for page in range(1, count + 1)]


def planned_pages(path) -> dict:
    """Sheet -> pages its print settings ask for: one more than its manual row breaks."""
    pages = {}
    with zipfile.ZipFile(path) as archive:
        for name, part in sheet_parts(path).items():
            xml = archive.read(part).decode()
            breaks = re.search(r'<rowBreaks count="(\d+)"', xml)
            pages[name] = 1 + (int(breaks.group(1)) if breaks else 0)
    return pages


def page_title(text: str) -> str:
    """The page header: the first printed line."""
    return next(line.strip() for line in text.splitlines() if line.strip())


def test_no_number_is_shown_as_hashes(printed):
    path, _pdf, pages = printed
    hashed = [number for number, text in enumerate(pages, start=1) if "###" in text]
    assert not hashed, f"{path.name}: ### on pages {hashed}"


def test_every_sheet_is_printed_under_its_title(printed):
    path, _pdf, pages = printed
    titles = [page_title(text) for text in pages]
    for sheet in sheet_parts(path):
        assert any(title == sheet or title.startswith(sheet + ":") for title in titles), \
            f"{path.name}: no page is headed {sheet!r}; page headers: {sorted(set(titles))}"


def test_pages_are_the_planned_pages(printed):
    """One page wide and no break inside a chart: LibreOffice prints exactly the planned
    pages, in sheet order, each headed by its sheet."""
    path, _pdf, pages = printed
    expected = [sheet for sheet, count in planned_pages(path).items() for _ in range(count)]
    titles = [page_title(text).split(":")[0] for text in pages]
    assert titles == expected, f"{path.name}: printed {len(titles)} pages, planned {len(expected)}"


def test_lambda_sheets_say_so_at_the_top(printed):
    path, _pdf, pages = printed
    checked = 0
    with zipfile.ZipFile(path) as archive:
        for sheet, part in sheet_parts(path).items():
            xml = archive.read(part).decode()
            if "AVERAGE_GRAD(" not in xml and "AVERAGE_SQR_GRAD(" not in xml:
                continue
            first_page = next(text for text in pages if page_title(text).split(":")[0] == sheet)
            top = " ".join(first_page.splitlines()[:8])
            assert "Needs Excel 365 or Excel 2021+" in top, f"{path.name}!{sheet}: no LAMBDA banner at the top"
            checked += 1
    if path.name == "average-grad.xlsx":
        assert checked == 3, "average-grad has three LAMBDA sheets (tests, momentum, smoothing)"
