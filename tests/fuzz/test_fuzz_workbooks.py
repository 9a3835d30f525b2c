"""Randomly damaged workbooks: verify ends with exit 0, 1 or 2, and exit 2 is one line.

Hypothesis picks a workbook, a kind of damage (tests/fuzz/damage.py) and a seed; the
damage is reproduced from those three alone. Derandomized, so CI runs the same cases
every time; XLGEN_FUZZ_EXAMPLES=2000 runs a larger search (benchmarks/fuzz.py runs
5,000 cases with time and memory per case).
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.fuzz.damage import KINDS, damage
from tests.fuzz.harness import SHARED_FIXTURES, corpus, judge, real_process, run_verify

EXAMPLES = int(os.environ.get("XLGEN_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    """Small builds (epochs=1) and the course's small files: each verifies in well under a second."""
    found = corpus(tmp_path_factory.mktemp("fuzz-corpus"), include_large=False)
    small = [book for book in found if book.stat().st_size < 150_000]
    assert len(small) >= 3
    return {book.name: book.read_bytes() for book in small}


def check_case(books, tmp_path, name: str, kind: str, seed: int):
    path = tmp_path / f"{kind}-{seed}-{name}"
    path.write_bytes(damage(books[name], kind, random.Random(seed)))
    code, out, err, crash = run_verify(path)
    problem = judge(code, out, err, crash)
    assert problem is None, f"{name} damaged by {kind!r} with seed {seed}: {problem}\n{crash or err}"
    return path, code, err


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_workbook_ends_in_exit_0_1_or_2_with_one_line(books, tmp_path, kind):
    @FUZZ
    @given(name=st.sampled_from(sorted(books)), seed=st.integers(0, 2**32 - 1))
    def case(name, seed):
        check_case(books, tmp_path, name, kind, seed)
    case()


def test_the_fixtures_are_there():
    """The course's files are part of the corpus where ../shared exists."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not beside this repository")
    assert (SHARED_FIXTURES / "graddesc-course.xlsx").exists()


@pytest.mark.parametrize("kind, seed", [("zip", 1), ("member", 4), ("tag", 7), ("formula", 11)])
def test_a_real_process_ends_the_same_way(books, tmp_path, kind, seed):
    """A sample as the user runs it: the same exit code and the same one line."""
    name = sorted(books)[seed % len(books)]
    path, code, err = check_case(books, tmp_path, name, kind, seed)
    process_code, out, process_err = real_process(path)
    assert judge(process_code, out, process_err, None) is None, process_err
    assert (process_code, process_err.strip()) == (code, err.strip())
