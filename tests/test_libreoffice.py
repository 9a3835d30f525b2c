"""LibreOffice really recalculates (it does not echo the cached values XlsxWriter stored)."""

from __future__ import annotations

import pytest
import xlsxwriter

from xlgen.engine import libreoffice
from xlgen.engine.libreoffice import recalculate_with_libreoffice, soffice_path
from xlgen.errors import XlgenError

needs_soffice = pytest.mark.skipif(
    soffice_path() is None, reason="LibreOffice (soffice) is not installed; run scripts/install-libreoffice"
)


def write_stale_workbook(path) -> None:
    """A workbook whose cached values are deliberately wrong: only a recalculation fixes them."""
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("calc")
    sheet.write_number("A1", 21)
    sheet.write_formula("B1", "=A1*2", None, 999)
    sheet.write_number("A2", 0.1)
    sheet.write_formula("B2", "=A2*3", None, 999)
    sheet.write_formula("C1", "=_xlfn.LET(_xlpm.a,A1,_xlpm.a+1)", None, 999)
    sheet.write_formula("D1", "=1/0", None, 999)
    sheet.write_string("E1", "label")
    workbook.close()


@needs_soffice
def test_formulas_are_recalculated_not_read_from_cache(tmp_path):
    path = tmp_path / "stale.xlsx"
    write_stale_workbook(path)
    before = path.read_bytes()

    values = recalculate_with_libreoffice(path)

    calc = values["calc"]
    assert calc[(1, 1)] == 21
    assert calc[(1, 2)] == 42  # the stored cached value was 999
    assert calc[(2, 2)] == pytest.approx(0.3, rel=1e-14)
    assert calc[(1, 3)] == 22  # LET works in LibreOffice 25.2
    assert calc[(1, 4)] == "#DIV/0!"
    assert calc[(1, 5)] == "label"
    assert set(calc) == {(1, 1), (1, 2), (2, 1), (2, 2), (1, 3), (1, 4), (1, 5)}
    assert path.read_bytes() == before  # the input file is untouched


@needs_soffice
def test_unreadable_file_is_a_user_error(tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(XlgenError, match="LibreOffice produced no output"):
        recalculate_with_libreoffice(path)


@needs_soffice
def test_timeout_is_a_user_error(tmp_path):
    path = tmp_path / "stale.xlsx"
    write_stale_workbook(path)
    with pytest.raises(XlgenError, match="timed out"):
        recalculate_with_libreoffice(path, timeout=0.05)


def test_missing_soffice_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(libreoffice, "soffice_path", lambda: None)
    with pytest.raises(XlgenError, match="scripts/install-libreoffice"):
        recalculate_with_libreoffice(tmp_path / "any.xlsx")
