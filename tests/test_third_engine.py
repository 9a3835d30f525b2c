"""The third engine: IronCalc (Rust, from PyPI) recomputes every example workbook, the
NumPy reference judges its values.

Unlike LibreOffice it evaluates named LAMBDAs, so nothing is skipped: the LAMBDA sheets
are checked by an engine nobody here wrote too. It drops brackets it thinks redundant
when it loads a file (shared/reference/ENGINES.md), so its sums may round one ulp apart
from Excel's; verify judges it with the same rules as xlgen's engine.
"""

from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.workbook_files import read_formula, replace_formula

WORKBOOKS = sorted((ROOT / "workbooks").glob("*.xlsx"))

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ironcalc") is None,
                                reason="ironcalc is not installed (pip install -e '.[test]' installs it)")


@pytest.mark.parametrize("path", WORKBOOKS, ids=[path.name for path in WORKBOOKS])
def test_example_workbook_recomputed_by_ironcalc_agrees_with_the_reference(path):
    from xlgen.verify import verify_file
    ours = verify_file(path)
    iron = verify_file(path, engine="ironcalc")

    assert iron.engine == "ironcalc"
    first = iron.mismatches[0].as_json() if iron.mismatches else None
    assert iron.ok, f"IronCalc disagrees with the reference; first: {first}"
    assert iron.skipped == []
    # every cell xlgen's engine checks, IronCalc's values are checked at too, LAMBDA sheets included
    assert {check.sheet: set(check.expected) for check in iron.checks} == \
        {check.sheet: set(check.expected) for check in ours.checks}
    assert iron.cells_checked == ours.cells_checked > 0


def test_a_wrong_lambda_fails_under_ironcalc(tmp_path):
    """AVERAGE_GRAD's momentum term made 1.5 times too large in workbook.xml: IronCalc
    computes the LAMBDA (LibreOffice cannot), and the reference names a call site."""
    source = ROOT / "workbooks" / "average-grad.xlsx"
    wrong = tmp_path / "wrong-lambda.xlsx"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(wrong, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "xl/workbook.xml":
                text = data.decode()
                body = re.search(r'<definedName name="AVERAGE_GRAD"[^>]*>([^<]*)</definedName>', text).group(1)
                wrong_body = body.replace("_xlpm.grad_avg*_xlpm.mom", "_xlpm.grad_avg*_xlpm.mom*1.5")
                assert wrong_body != body, body
                data = text.replace(body, wrong_body).encode()
            copy.writestr(info, data)
    code, out, _ = run_cli("verify", wrong, "--engine", "ironcalc", "--json")
    report = json.loads(out)
    assert code == 1 and report["engine"] == "ironcalc"
    assert report["mismatches"][0]["cell"].startswith(("tests!", "momentum!"))


def test_a_wrong_formula_fails_under_ironcalc_at_its_cell(built_graddesc, tmp_path):
    wrong = tmp_path / "wrong.xlsx"
    replace_formula(built_graddesc, wrong, "basic", "F5", read_formula(built_graddesc, "basic", "F5") + "*1.5")
    code, out, _ = run_cli("verify", wrong, "--engine", "ironcalc", "--json")
    report = json.loads(out)
    assert code == 1 and "basic!F5" in [mismatch["cell"] for mismatch in report["mismatches"]]
    first = next(m for m in report["mismatches"] if m["cell"] == "basic!F5")
    assert first["actual"] == pytest.approx(1.5 * first["expected"], rel=1e-12)


def test_missing_ironcalc_is_one_line(monkeypatch, built_graddesc):
    import builtins
    real_import = builtins.__import__

    def no_ironcalc(name, *args, **kwargs):
        if name == "ironcalc":
            raise ImportError("No module named 'ironcalc'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_ironcalc)
    from click.testing import CliRunner
    from xlgen.cli import main
    result = CliRunner().invoke(main, ["verify", str(built_graddesc), "--engine", "ironcalc"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "xlgen: error: IronCalc is not installed; pip install 'xlgen[ironcalc]' (or: pip install ironcalc)"]


def test_engine_option_names_ironcalc(built_graddesc: Path):
    code, out, _ = run_cli("verify", built_graddesc, "--engine", "ironcalc")
    assert code == 0, out
    assert "(engine: ironcalc)" in out.splitlines()[0]
