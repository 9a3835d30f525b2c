"""The cross-entropy workbook (softmax, entropy) and the course's entropy_example.xlsx."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli
from tests.course22 import COURSE22
from tests.workbook_files import read_formula, replace_formula
from xlgen.build import build
from xlgen.errors import TemplateError
from xlgen.reference import cross_entropy as ce
from xlgen.templates import load_template

WORKBOOK = ROOT / "workbooks" / "cross-entropy.xlsx"
COURSE_FILE = COURSE22 / "entropy_example.xlsx"
OUTPUTS = [-4.885224780447092, 2.5974728206314666, 0.591664975702642, -2.0689445222722602, -4.568679173867985]


def test_reference_softmax_and_losses():
    parts = ce.softmax(OUTPUTS)
    assert parts["softmax_total"] == pytest.approx(1.0, abs=1e-15)
    assert parts["softmax"][1] == pytest.approx(0.8731394033037158, rel=1e-12)   # the course's dog
    actual = [0, 1, 0, 0, 0]
    assert ce.categorical_loss(parts["softmax"], actual, "log10") == pytest.approx(-math.log10(parts["softmax"][1]))
    ratio = ce.categorical_loss(parts["softmax"], actual, "ln") / ce.categorical_loss(parts["softmax"], actual, "log10")
    assert ratio == pytest.approx(math.log(10), rel=1e-14)
    y, p = [1, 1, 0, 0, 1], [0.5, 0.98, 0.9, 0.5, 0.9]
    for log in ("log10", "ln"):
        assert np.allclose(ce.binary_two_terms(y, p, log), ce.binary_if_form(y, p, log), rtol=1e-15)
    # PyTorch's binary_cross_entropy (mean, natural log) of these five: by its definition
    expected = -np.mean([math.log(0.5), math.log(0.98), math.log(0.1), math.log(0.5), math.log(0.9)])
    assert ce.mean(ce.binary_two_terms(y, p, "ln")) == pytest.approx(expected, rel=1e-14)


def test_verify_passes_and_checks_every_formula():
    code, out, _ = run_cli("verify", WORKBOOK, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"], report["mismatches"][:3]
    assert report["unchecked_formula_cells"] == []
    assert report["cells_checked"] == report["formula_cells"] == 116  # 111 on the two sheets, 5 numbers on the about sheet
    assert {name: sheet["layout"] for name, sheet in report["sheets"].items()} == {
        "about": "about", "softmax": "softmax", "entropy": "cross_entropy"}


MUTATIONS = [
    ("softmax", "D3", lambda f: f.replace("$C$7", "$C$6")),
    ("softmax", "C7", lambda f: f.replace("C6", "C5")),
    ("entropy", "B3", lambda f: f.replace("D3", "D4")),                 # links another class's probability
    ("entropy", "D3", lambda f: f.replace("LOG(", "LN(")),
    ("entropy", "E7", lambda f: f.replace("-SUM", "SUM")),
    ("entropy", "F14", lambda f: f.replace("E14", "D14")),
    ("entropy", "I14", lambda f: f.replace("1-D14", "D14")),          # isCat 0: the branch taken
    ("entropy", "F17", lambda f: "-" + f),                              # the course's sign slip
    ("entropy", "C25", lambda f: f.replace("LOG", "LN")),
]


@pytest.mark.parametrize("sheet, cell, change", MUTATIONS, ids=[f"{m[0]}-{m[1]}" for m in MUTATIONS])
def test_one_changed_formula_fails_and_is_named(tmp_path, sheet, cell, change):
    original = read_formula(WORKBOOK, sheet, cell)
    changed = change(original)
    assert changed != original
    mutated = tmp_path / "mutated.xlsx"
    replace_formula(WORKBOOK, mutated, sheet, cell, changed)
    code, out, _ = run_cli("verify", mutated, "--json")
    report = json.loads(out)
    assert code == 1 and report["first_divergence"] == f"{sheet}!{cell}", report["mismatches"][:3]


def test_rebuild_gives_the_same_bytes(tmp_path):
    path = tmp_path / "cross-entropy.xlsx"
    build("cross-entropy", path)
    assert path.read_bytes() == WORKBOOK.read_bytes(), "workbooks/cross-entropy.xlsx is out of date: run `xlgen build --all`"


@pytest.mark.parametrize("override, message", [
    ("sheets.entropy.softmax_sheet=nosuch", "no sheet 'nosuch'"),
    ("sheets.softmax.actual=horse", "must be one of cat"),
])
def test_bad_options_are_refused(override, message):
    with pytest.raises(TemplateError, match=message):
        load_template("cross-entropy", [override])


def test_probabilities_must_be_inside_0_and_1(tmp_path):
    text = (ROOT / "templates" / "cross-entropy.toml").read_text().replace("pred_cat = [0.5,", "pred_cat = [1,")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(TemplateError, match="strictly between 0 and 1"):
        load_template(str(path))


@pytest.mark.skipif(not COURSE_FILE.exists(), reason="the course's entropy_example.xlsx is not in ../shared")
def test_the_course_file_is_read_and_its_sign_slip_found():
    """Every formula of the course's file is checked; the one that disagrees is the binary
    block's total, =-SUM(F27:F31): the rows already carry their minus, so the total of five
    positive losses comes out negative."""
    code, out, _ = run_cli("verify", COURSE_FILE, "--json")
    report = json.loads(out)
    assert report["cells_checked"] == report["formula_cells"] == 39
    assert report["unchecked_formula_cells"] == []
    assert code == 1 and [m["cell"] for m in report["mismatches"]] == ["entropy!F32"]
    mismatch = report["mismatches"][0]
    assert mismatch["expected"] == pytest.approx(-mismatch["actual"]) and mismatch["expected"] > 0
    assert report["largest_relative_difference"] < 1e-13


@pytest.mark.skipif(not COURSE_FILE.exists(), reason="the course's entropy_example.xlsx is not in ../shared")
@pytest.mark.parametrize("sheet, cell, formula", [("softmax", "D5", "C5/$C$6"), ("entropy", "G29", "-IF(B29=1,LOG(D29),LOG(D29))")])
def test_a_changed_course_formula_is_named_first(tmp_path, sheet, cell, formula):
    changed = tmp_path / "changed.xlsx"
    replace_formula(COURSE_FILE, changed, sheet, cell, formula)
    code, out, _ = run_cli("verify", changed, "--json")
    report = json.loads(out)
    # the file's own slip at entropy!F32 stays; it is independent of the changed cell
    named = [m["cell"] for m in report["mismatches"] if m["cell"] != "entropy!F32"]
    assert code == 1 and named[0] == f"{sheet}!{cell}", report["mismatches"][:3]


def test_only_templates_whose_sheets_read_no_data_may_leave_out_data(tmp_path):
    assert load_template("cross-entropy").data is None
    path = tmp_path / "no-data.toml"
    path.write_text('[sheets.basic]\nlayout = "basic"\n')
    with pytest.raises(TemplateError, match=r"sheets.basic: layout 'basic' reads the \[data\] table .*which the template lacks"):
        load_template(str(path))
