"""The Python API (xlgen.build, xlgen.verify, xlgen.templates), as a notebook uses it."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import xlgen
from tests.conftest import ROOT
from tests.workbook_files import replace_formula, sheet_part


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("api") / "small.xlsx"
    assert xlgen.build("graddesc", path, epochs=2, learning_rate=0.0002) == path
    return path


def test_the_acceptance_line_runs():
    result = subprocess.run([sys.executable, "-c", "import xlgen; r = xlgen.verify('workbooks/graddesc.xlsx'); assert r.ok"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr


def test_import_xlgen_loads_nothing_heavy():
    code = ("import sys, xlgen; heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'click', 'xlsxwriter', 'openpyxl', 'formulas') or m.startswith('xlgen.')); print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_templates_lists_what_build_takes():
    found = {info.name: info for info in xlgen.templates()}
    assert {"graddesc", "two-neuron", "average-grad"} <= set(found)
    assert found["graddesc"].sheets[:3] == ("about", "data", "basic")
    assert "graddesc" in xlgen.templates.available_templates()   # still the module, too


def test_build_takes_settings_as_keywords(small):
    report = xlgen.verify(small)
    assert report.ok and report.first_divergence is None and report.mismatches == []
    assert report.cells_checked == report.formula_cells > 0
    assert report.report.checks[1].inputs["learning_rate"]["value"] == 0.0002
    assert "OK" in repr(report) and "OK:" in str(report)


def test_dotted_and_text_settings(tmp_path):
    path = xlgen.build("graddesc", tmp_path / "finite.xlsx", epochs=1, derivative="finite",
                       sheets__basic__learning_rate=0.001)
    basic = xlgen.verify(path).report.checks[1]
    assert basic.inputs["derivative"]["value"] == "finite" and basic.inputs["learning_rate"]["value"] == 0.001


def test_errors_are_exceptions_not_exits(small, tmp_path):
    with pytest.raises(xlgen.XlgenError, match="exists; use --force"):
        xlgen.build("graddesc", small, epochs=2)
    with pytest.raises(xlgen.XlgenError, match="unknown key 'bogus'"):
        xlgen.build("graddesc", tmp_path / "x.xlsx", bogus=1)
    with pytest.raises(xlgen.XlgenError, match="learning_rate must be greater than 0"):
        xlgen.build("graddesc", tmp_path / "x.xlsx", learning_rate=-1)
    with pytest.raises(xlgen.XlgenError, match="no such file"):
        xlgen.verify(tmp_path / "missing.xlsx")
    with pytest.raises(xlgen.XlgenError, match="engine must be one of"):
        xlgen.verify(small, engine="excel")
    assert not (tmp_path / "x.xlsx").exists()
    assert xlgen.build("graddesc", small, epochs=2, learning_rate=0.0002, force=True) == small


def test_a_wrong_formula_gives_a_failing_report_with_its_table(small, tmp_path):
    broken = tmp_path / "broken.xlsx"
    replace_formula(small, broken, "basic", "F5", "(B5-E5)^2*1.5")
    report = xlgen.verify(broken)
    assert not report.ok and not report
    assert report.first_divergence == "basic!F5" == report.mismatches[0].cell
    page = report._repr_html_()
    assert "FAIL" in page and "<table>" in page and "basic!F5" in page and "=(B5-E5)^2*1.5" in page
    assert page.count("<tr>") == 1 + min(10, len(report.mismatches))
    assert report.as_json()["first_divergence"] == "basic!F5"


def test_strict_also_fails_stale_saved_values(small, tmp_path):
    stale = tmp_path / "stale.xlsx"
    part = sheet_part(small, "basic")
    with zipfile.ZipFile(small) as original, zipfile.ZipFile(stale, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == part:
                data, count = re.subn(rb'(<c r="F5"[^>]*><f>[^<]*</f>)<v>[^<]*</v>', rb"\1<v>12345</v>", data)
                assert count == 1
            copy.writestr(info, data)
    assert xlgen.verify(stale).ok
    strict = xlgen.verify(stale, strict=True)
    assert not strict.ok and strict.stale and "stale" in strict._repr_html_()
    assert strict.as_json()["ok"] is False
