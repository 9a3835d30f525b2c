"""A small fixed-seed run of benchmarks/mutation_score.py: random single-formula changes
(saved values kept) in each example workbook and the course's own file are caught at the
mutated cell, or shown by the engine to change nothing; none is missed. The full run
(300 per file) is the benchmark; its table is in the README."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import COURSE_FIXTURE, ROOT

SPEC = importlib.util.spec_from_file_location("mutation_score", ROOT / "benchmarks" / "mutation_score.py")
mutation_score = importlib.util.module_from_spec(SPEC)
sys.modules["mutation_score"] = mutation_score   # its dataclasses look their module up
SPEC.loader.exec_module(mutation_score)

FILES = {"graddesc.xlsx": 12, "two-neuron.xlsx": 6, "average-grad.xlsx": 12}


@pytest.mark.parametrize("name", [*FILES, "course"])
def test_mutations_are_caught_at_their_cell_and_none_is_missed(name):
    path = COURSE_FIXTURE if name == "course" else ROOT / "workbooks" / name
    if not path.exists():
        pytest.skip(f"{path} is not here")
    score = mutation_score.score_file(Path(path), FILES.get(name, 12), seed=1)
    assert sum(score.counts.values()) == FILES.get(name, 12)
    assert score.counts["missed"] == 0, score.missed
    assert score.counts["elsewhere"] == 0, score.elsewhere
    assert score.counts["at cell"] + score.counts["refused"] > 0


def test_each_kind_of_mutation_changes_the_formula_as_described():
    import random
    rng = random.Random(0)
    assert mutation_score.mutate("C4+D4*A4", "*1.5", rng) == "C4+D4*A4*1.5"
    assert mutation_score.mutate("C4+D4*A4", "+1", rng) == "C4+D4*A4+1"
    assert mutation_score.mutate("(J53-I53)/0.01", "swap +/-", rng) == "(J53+I53)/0.01"
    assert mutation_score.mutate("-C4+D4", "swap +/-", rng) == "-C4-D4"
    assert mutation_score.mutate("SQRT(SUM(L4:L32))", "swap function", rng) in ("ABS(SUM(L4:L32))",
                                                                               "SQRT(AVERAGE(L4:L32))")
    assert mutation_score.mutate("(J53-I53)/0.01", "literal", rng) in ("(J53-I53)/0.02", "(J53-I53)/1.01")
    shifted = mutation_score.mutate("C4*$F$1", "shift reference", rng)
    assert shifted != "C4*$F$1" and shifted.count("*") == 1
    assert mutation_score.mutate("C4*2", "swap function", rng) is None
