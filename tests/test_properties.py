"""Property tests: any valid spec builds a workbook that verifies, and any one formula
changed is caught and named.

Hypothesis draws specs (data line and points, epochs, learning rate, initial weights,
derivative), writes each as a template file and runs the real command line: build, then
verify. Then one formula cell whose value is visibly nonzero is changed, as a user's edit
or a builder bug would, and verify must fail and name exactly that cell as the first
divergence (everything before it in calculation order is untouched; everything that
goes wrong after it is a consequence). Deterministic: derandomize=True.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import run_cli
from tests.workbook_files import read_formula, replace_formula

PROPERTY_SETTINGS = settings(derandomize=True, max_examples=25, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


def number(low: float, high: float, places: int):
    return st.floats(low, high, allow_nan=False, allow_infinity=False).map(lambda value: round(value, places))


specs = st.fixed_dictionaries({
    "epochs": st.integers(1, 4),
    "learning_rate": st.floats(1e-6, 1e-3, allow_nan=False, allow_infinity=False),
    "derivative": st.sampled_from(["analytic", "finite"]),
    "a": number(-5, 5, 6),
    "b": number(-5, 5, 6),
    "slope": number(-5, 5, 4),
    "intercept": number(-50, 50, 3),
    "x": st.lists(st.one_of(st.integers(-20, 20), number(-20, 20, 3)), min_size=2, max_size=12),
})


@st.composite
def long_specs(draw):
    """Runs of up to 20,000 rows: 2-200 data points, 1-2,000 epochs."""
    spec = draw(specs.map(dict))
    spec["x"] = draw(st.lists(st.one_of(st.integers(-20, 20), number(-20, 20, 3)), min_size=2, max_size=200))
    spec["epochs"] = draw(st.integers(1, min(2000, 20_000 // len(spec["x"]))))
    return spec


# few examples: each builds and verifies up to 20,000 rows (about 280,000 cells) twice
LONG_SETTINGS = settings(derandomize=True, max_examples=5, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def template_text(spec: dict) -> str:
    x = ", ".join(repr(value) for value in spec["x"])
    return f"""\
title = "property test"
epochs = {spec["epochs"]}
learning_rate = {spec["learning_rate"]!r}
derivative = "{spec["derivative"]}"

[data]
intercept = {spec["intercept"]!r}
slope = {spec["slope"]!r}
x = [{x}]

[sheets.basic]
layout = "basic"
initial = {{ a = {spec["a"]!r}, b = {spec["b"]!r} }}
"""


def verify(path: Path) -> tuple[int, dict]:
    code, out, err = run_cli("verify", path, "--json")
    assert err == "", err
    return code, json.loads(out)


def visible_cells(path: Path) -> list[tuple[str, int, int, float]]:
    """Formula cells whose value a *1.5 moves far past the tolerance (|value| >= 1)."""
    from xlgen.engine import read_xlsx
    book = read_xlsx(path)
    return sorted((sheet.name, row, col, value) for sheet in book.sheets
                  for (row, col), value in sheet.cached.items()
                  if (row, col) in sheet.formulas and isinstance(value, float)
                  and math.isfinite(value) and abs(value) >= 1)


@PROPERTY_SETTINGS
@given(spec=specs, data=st.data())
def test_any_valid_spec_verifies_and_any_changed_formula_is_named(spec, data):
    verifies_and_names_a_change(spec, data)


@LONG_SETTINGS
@given(spec=long_specs(), data=st.data())
def test_long_runs_verify_and_a_changed_formula_is_named(spec, data):
    """Long runs drift from the reference by rounding; they must still verify, and a
    change must still be named at its cell."""
    verifies_and_names_a_change(spec, data)


def verifies_and_names_a_change(spec: dict, data) -> None:
    from xlgen.formula import cell_name
    with tempfile.TemporaryDirectory(prefix="xlgen-property-") as folder:
        folder = Path(folder)
        template = folder / "spec.toml"
        template.write_text(template_text(spec))
        built = folder / "built.xlsx"
        code, out, err = run_cli("build", template, "-o", built, "--quiet")
        assert code == 0, err

        code, report = verify(built)
        assert code == 0 and report["ok"], (report["first_divergence"], report["mismatches"][:1], report["lint"])
        assert report["unchecked_formula_cells"] == []
        assert report["cells_checked"] == report["formula_cells"] > 0

        candidates = visible_cells(built)
        assume(candidates)  # all zero (0 = 0*x + 0 from 0, 0): nothing a change would move
        sheet = data.draw(st.sampled_from(sorted({cell[0] for cell in candidates})), label="sheet")
        sheet, row, col, value = data.draw(st.sampled_from([cell for cell in candidates if cell[0] == sheet]),
                                           label="cell")
        change = data.draw(st.sampled_from(["*1.5", "+1"] if abs(value) < 1e6 else ["*1.5"]), label="change")
        cell = cell_name(row, col)
        mutated = folder / "mutated.xlsx"
        replace_formula(built, mutated, sheet, cell, f"({read_formula(built, sheet, cell)}){change}")

        code, report = verify(mutated)
        assert code == 1 and not report["ok"]
        assert report["first_divergence"] == f"{sheet}!{cell}", [m["cell"] for m in report["mismatches"][:5]]
        first = report["mismatches"][0]
        assert first["formula"].endswith(change)
        assert first["expected"] == value or math.isclose(first["expected"], value, rel_tol=1e-9)
