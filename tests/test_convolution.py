"""The convolution workbook and the course's conv-example.xlsx (both of its sheets)."""

from __future__ import annotations

import json

import numpy as np
import openpyxl
import pytest

from tests.conftest import ROOT, run_cli
from tests.course22 import COURSE22
from tests.workbook_files import read_formula, replace_formula
from xlgen.build import build
from xlgen.errors import TemplateError
from xlgen.reference import convolution as conv
from xlgen.sheets.convolution import load_digit
from xlgen.templates import load_template

WORKBOOK = ROOT / "workbooks" / "convolution.xlsx"
COURSE_FILE = COURSE22 / "conv-example.xlsx"


def test_reference_on_a_small_example():
    image = np.arange(16, dtype=float).reshape(4, 4)
    kernel = np.array([[1, 0, -1]] * 3, dtype=float)
    # each window's left column minus its right column: -2 per row, 3 rows -> -6, ReLU -> 0
    assert np.array_equal(conv.conv_relu([image], [kernel], (2, 2)), np.zeros((2, 2)))
    assert np.array_equal(conv.conv_relu([image], [-kernel], (2, 2)), np.full((2, 2), 6.0))
    # a 3x3 output over a 4x4 image reads one empty (0) column and row
    padded = conv.conv_relu([image], [np.ones((3, 3))], (3, 3))
    assert padded[0, 0] == image[:3, :3].sum() and padded[2, 2] == image[2:, 2:].sum()
    assert np.array_equal(conv.max_pool(image, (2, 2)), [[5, 7], [13, 15]])
    assert np.array_equal(conv.max_pool(image, (2, 3)), [[5, 7, 0], [13, 15, 0]])  # an empty block: MAX() = 0
    assert conv.dense([np.ones((2, 2))], [np.full((2, 2), 0.5)]) == 2.0
    assert np.array_equal(conv.dropout([0.5, 0.95, 0.9005], 0.9), [0, 0.95, 0])


def test_the_digit_is_the_courses_seven():
    pixels = load_digit("mnist_seven")
    assert pixels.shape == (28, 28) and pixels.min() == 0 and pixels.max() == 254
    assert pixels[7, 11:16].tolist() == [97, 96, 77, 118, 61]   # the top stroke's first row


def test_verify_passes_and_checks_every_formula():
    code, out, _ = run_cli("verify", WORKBOOK, "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"], report["mismatches"][:3]
    assert report["unchecked_formula_cells"] == []
    assert report["cells_checked"] == report["formula_cells"] == 2 * 26 * 26 + 2 * 24 * 24 + 2 * 12 * 12 + 1 + 1  # and the about sheet's dense activation


def test_the_workbook_shows_what_a_learner_needs():
    book = openpyxl.load_workbook(WORKBOOK)
    sheet = book["conv"]
    names = set(sheet.defined_names)
    assert {"conv1_filter1", "conv1_filter2", "conv2_filter1_map1", "conv2_filter2_map2", "image",
            "dense_weights1"} <= names
    scales = [str(rule.sqref) for rule in sheet.conditional_formatting
              if any(r.type == "colorScale" for r in rule.rules)]
    assert "A2:AB29" in scales and "AH3:BG28" in scales and "BM4:CJ27" in scales and len(scales) == 7
    assert sheet["AH3"].value == "=MAX(0,SUMPRODUCT(A2:C4,conv1_filter1))"
    cached = openpyxl.load_workbook(WORKBOOK, data_only=True)["conv"]
    assert cached["DM4"].value > 0    # the dense activation has its saved value


MUTATIONS = [
    ("AO11", lambda f: f.replace("conv1_filter1", "conv1_filter2")),     # conv1 map 1 with the wrong kernel
    ("AL40", lambda f: f.replace("MAX(0,", "MAX(-1,")),                 # conv1 map 2: no ReLU floor
    ("BR12", lambda f: f.replace("+SUMPRODUCT", "-SUMPRODUCT")),         # conv2 map 1
    ("BY38", lambda f: f.replace("AT37:AV39", "AT38:AV40")),             # conv2 map 2: a window one row low
    ("CU7", lambda f: f.replace("CD11", "CD10")),                        # max-pool: a 2x1 block
    ("DM4", lambda f: f.split("+")[0]),                                  # dense: the second map dropped
]


@pytest.mark.parametrize("cell, change", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_one_changed_formula_fails_and_is_named(tmp_path, cell, change):
    original = read_formula(WORKBOOK, "conv", cell)
    changed = change(original)
    assert changed != original, original
    mutated = tmp_path / "mutated.xlsx"
    replace_formula(WORKBOOK, mutated, "conv", cell, changed)
    code, out, _ = run_cli("verify", mutated, "--json")
    report = json.loads(out)
    assert code == 1 and report["first_divergence"] == f"conv!{cell}", report["mismatches"][:3]


def test_a_learners_own_kernel_is_an_input(tmp_path):
    """Edit a kernel as a learner would (in a spreadsheet program that saves no values):
    verify reads the new kernel from the file and the maps still agree."""
    book = openpyxl.load_workbook(WORKBOOK)
    for col in ("AD", "AE", "AF"):
        book["conv"][f"{col}11"], book["conv"][f"{col}13"] = -1, 1     # an upper-edge detector
    edited = tmp_path / "bottom-edges.xlsx"
    book.save(edited)
    code, out, _ = run_cli("verify", edited, "--json")
    report = json.loads(out)
    assert code == 0, report["mismatches"][:3]
    assert report["sheets"]["conv"]["inputs"]["filter 1/1"]["value"] == [[-1, -1, -1], [0, 0, 0], [1, 1, 1]]


def test_rebuild_gives_the_same_bytes(tmp_path):
    path = tmp_path / "convolution.xlsx"
    build("convolution", path)
    assert path.read_bytes() == WORKBOOK.read_bytes(), "workbooks/convolution.xlsx is out of date: run `xlgen build --all`"


@pytest.mark.parametrize("override, message", [
    ("sheets.conv.digit=eight", "one of the digits shipped"),
    ("sheets.conv.dense_seed=0", "whole number"),
])
def test_bad_options_are_refused(override, message):
    with pytest.raises(TemplateError, match=message):
        load_template("convolution", [override])


def test_a_kernel_must_be_3x3(tmp_path):
    text = (ROOT / "templates" / "convolution.toml").read_text().replace(
        "conv1_filter1 = [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]", "conv1_filter1 = [[1, 1], [0, 0]]")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(TemplateError, match="3x3 matrix"):
        load_template(str(path))


course = pytest.mark.skipif(not COURSE_FILE.exists(), reason="the course's conv-example.xlsx is not in ../shared")


@pytest.fixture(scope="module")
def course_report():
    code, out, _ = run_cli("verify", COURSE_FILE, "--json")
    return code, json.loads(out)


@course
def test_the_course_file_is_read_and_its_dropout_count_found(course_report):
    """Both sheets are recognised; every formula but the dropout sheet's 1,200 RAND() cells
    (volatile inputs) is checked. What disagrees: "Total Pixels = 26*26" under a dropout
    filter of 24 x 25 = 600 cells, so "Actual dropout" (zeros / 676) is understated."""
    code, report = course_report
    assert {name: sheet["layout"] for name, sheet in report["sheets"].items()} == {
        "conv-example": "convolution", "conv-example (dropout)": "convolution"}
    assert report["formula_cells"] == 9336 and report["cells_checked"] == 9336 - 1200
    assert len(report["sheets"]["conv-example (dropout)"]["volatile_inputs"]) == 1200
    assert report["unchecked_formula_cells"] == []
    assert code == 1 and report["first_divergence"] == "conv-example (dropout)!FA30"
    assert [m["cell"] for m in report["mismatches"]] == [
        "conv-example (dropout)!FA30", "conv-example (dropout)!FA32",
        "conv-example (dropout)!FA63", "conv-example (dropout)!FA65"]
    assert report["mismatches"][0]["expected"] == 600 and report["mismatches"][0]["actual"] == 676
    assert report["largest_relative_difference"] < 1e-12
    assert report["stale_cached_values"] == []


@course
@pytest.mark.parametrize("sheet, cell, formula", [
    ("conv-example", "CY8", "MIN(BY8:BZ9)"),
    ("conv-example", "EN4", "SUMPRODUCT(DN4:EL26,CM4:DK26)"),
    ("conv-example (dropout)", "II4", "SUMPRODUCT(HI4:IG26,GH4:HF26)"),
])
def test_a_changed_course_formula_is_named(tmp_path, sheet, cell, formula):
    changed = tmp_path / "changed.xlsx"
    replace_formula(COURSE_FILE, changed, sheet, cell, formula)
    code, out, _ = run_cli("verify", changed, "--json")
    report = json.loads(out)
    named = [m["cell"] for m in report["mismatches"] if not m["cell"].startswith("conv-example (dropout)!FA")]
    assert code == 1 and named[0] == f"{sheet}!{cell}", report["mismatches"][:5]
