"""The writer's zip: parts compressed as XlsxWriter writes them (xlgen/writer.py).

The byte-for-byte rebuild tests of workbooks/ check the bytes; these check what they
rest on: every entry dated and moded as before, the names' comments in place, and a
failure halfway through a sheet leaves neither an open zip nor the temporary file.
"""

from __future__ import annotations

import zipfile

import pytest

from tests.conftest import ROOT, run_cli


def test_entries_carry_no_clock_time_and_one_mode(tmp_path):
    path = tmp_path / "book.xlsx"
    code, _, err = run_cli("build", "average-grad", "-o", path, "--quiet")
    assert code == 0, err
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert archive.testzip() is None
        workbook = archive.read("xl/workbook.xml").decode()
    assert infos[0].filename == "[Content_Types].xml"
    assert {info.date_time for info in infos} == {(1980, 1, 31, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100600}
    assert {info.compress_type for info in infos} == {zipfile.ZIP_DEFLATED}
    assert 'name="AVERAGE_GRAD" comment="' in workbook     # the Name Manager comment, added in flight
    assert path.read_bytes() == (ROOT / "workbooks" / "average-grad.xlsx").read_bytes()


def test_a_failure_inside_a_sheet_closes_the_zip_and_removes_the_temporary_file(tmp_path, monkeypatch):
    from xlgen import writer

    def failing_rows(self):
        self.fh.write("<sheetData>")
        raise RuntimeError("the sheet's rows failed")

    monkeypatch.setattr(writer.PreparedWorksheet, "_write_sheet_data", failing_rows)
    path = tmp_path / "book.xlsx"
    with pytest.raises(RuntimeError, match="rows failed"):   # the error itself, not one from closing the zip
        run_cli("build", "cross-entropy", "-o", path, "--quiet")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_inside_zipfiles_open_is_what_the_user_sees(tmp_path, monkeypatch):
    """A SIGTERM (test_nothing_lost, under load) landed inside zipfile's open() of the next
    part: the zip was marked as writing with no handle to close, and closing it raised
    ValueError over the interrupt (a traceback). The interrupt must be what propagates."""
    calls = []
    real_init = zipfile._ZipWriteFile.__init__

    def interrupted_init(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:     # the third part: after zipfile marked itself as writing
            raise SystemExit(128 + 15)   # what the build's SIGTERM handler raises
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(zipfile._ZipWriteFile, "__init__", interrupted_init)
    path = tmp_path / "book.xlsx"
    code, _, _ = run_cli("build", "cross-entropy", "-o", path, "--quiet")   # a ValueError would escape
    assert code == 128 + 15
    assert list(tmp_path.iterdir()) == []
