"""verify on a workbook xlgen did not write: the course's own graddesc (its VBA removed).

The course file has shared formulas, sheet-scoped names (some pointing at #REF!), the
optimiser state its macro saved under the rows (J33:M33, N3), and RANDBETWEEN in its
data sheet. verify must recognise its five sheets by their headers, read inputs and
saved state from the file, check them with the course's semantics, and name the cell
when one formula is changed.
"""

import json

import pytest

from tests.conftest import COURSE_FIXTURE, run_cli
from tests.workbook_files import replace_formula

pytestmark = pytest.mark.skipif(not COURSE_FIXTURE.exists(), reason="the course fixture is not in ../shared")


@pytest.fixture(scope="module")
def report():
    code, out, _ = run_cli("verify", COURSE_FIXTURE, "--json")
    assert code == 0, out
    return json.loads(out)


def test_every_course_sheet_is_recognised_and_checked(report):
    assert report["ok"] is True and report["mismatches"] == []
    layouts = {name: sheet["layout"] for name, sheet in report["sheets"].items()}
    assert layouts == {"data": "data", "basic": "basic", "momentum": "momentum", "rmsprop": "rmsprop",
                       "adam": "adam", "adam_ann": "adam_ann"}
    for name in ("basic", "momentum", "rmsprop", "adam", "adam_ann"):
        assert report["sheets"][name]["cells_checked"] > 200, name


def test_randbetween_cells_are_volatile_inputs_not_failures(report):
    volatile = report["sheets"]["data"]["volatile_inputs"]
    assert len(volatile) == 29 and volatile[0] == "data!B5"
    assert not any(m["cell"].startswith("data!") for m in report["mismatches"])


def test_inputs_and_saved_state_come_from_the_file(report):
    momentum = report["sheets"]["momentum"]["inputs"]
    assert momentum["learning_rate"] == {"cell": "momentum!D2", "value": 0.0001}
    assert momentum["mom"]["cell"] == "momentum!J1"
    assert momentum["grad_avg b entering row 4 (saved)"] == {"cell": "momentum!J33", "value": -18.33392669020789}
    rmsprop = report["sheets"]["rmsprop"]["inputs"]
    assert rmsprop["learning_rate"]["cell"] == "rmsprop!D2"          # no name: the cell under "learn"
    assert rmsprop["sqr_avg a entering row 4 (saved)"]["cell"] == "rmsprop!K33"
    adam_ann = report["sheets"]["adam_ann"]["inputs"]
    assert adam_ann["prev_grad2"] == {"cell": "adam_ann!N3", "value": 10.326280808548518}
    assert adam_ann["learning_rate"]["value"] == 0.00390625
    assert adam_ann["sqr_mom"] == {"cell": "adam_ann!L1", "value": 0.95}


def test_every_optimiser_formula_is_covered(report):
    """Only the data sheet's RANDBETWEEN cells are left: volatile inputs, not formulas to check."""
    assert all(cell.startswith("data!B") for cell in report["unchecked_formula_cells"])


@pytest.mark.parametrize("sheet, cell, formula", [
    ("momentum", "J10", "J9*$J$1+$K$1*F10*1.01"),          # a damped average slightly off
    ("momentum", "H20", "C20-J19*$D$2"),                    # steps with the previous row's average
    ("rmsprop", "H10", "C10-F10*$D$2/SQRT(J10)"),           # "fixing" the course's quirk is a change too
    ("adam", "M20", "M19*$L$1+$M$1*G20"),                   # square forgotten
    ("adam", "I25", "D25-K25*$D$2/SQRT(M25)/2"),
    ("adam_ann", "N34", "avg_grad2/prev_grad2*2"),
    ("adam_ann", "N33", "SQRT(L33)+M33"),
    ("adam_ann", "K34", "1/K4"),
    ("adam_ann", "F33", "SQRT(SUMSQ(F4:F32))"),
    ("momentum", "L33", "SQRT(SUM(L4:L31))"),
    ("basic", "M10", "D10-L10*$F$1*2"),
])
def test_one_changed_formula_fails_and_is_named(tmp_path, sheet, cell, formula):
    changed = tmp_path / "changed.xlsx"
    replace_formula(COURSE_FIXTURE, changed, sheet, cell, formula)
    code, out, _ = run_cli("verify", changed, "--json")
    result = json.loads(out)
    assert code == 1 and result["ok"] is False
    assert result["first_divergence"] == f"{sheet}!{cell}"
