"""The list of formulas' scipy-backed function names (which lets a workbook LAMBDA's name
be resolved without importing scipy) matches the installed formulas."""

import os
from pathlib import Path

import formulas
import pytest

from xlgen.engine.library_names import FORMULAS_VERSION, HEAVY_NAMES


@pytest.mark.skipif(formulas.__version__ != FORMULAS_VERSION,
                    reason="another formulas version: the engine imports its modules instead")
def test_heavy_names_are_the_stat_and_comp_modules_names():
    import formulas.functions.comp as comp
    import formulas.functions.stat as stat
    assert HEAVY_NAMES == set(stat.FUNCTIONS) | set(comp.FUNCTIONS)


@pytest.mark.skipif(formulas.__version__ != FORMULAS_VERSION,
                    reason="another formulas version: the engine imports its modules instead")
def test_light_names_are_each_modules_names():
    import importlib

    from xlgen.engine.library_names import LIGHT_NAMES
    for sub, names in LIGHT_NAMES.items():
        assert names == set(importlib.import_module(sub, "formulas.functions").FUNCTIONS), sub


def _searched_everywhere(name):
    """library_function as it was: every module's table searched in order."""
    import importlib
    import itertools

    import formulas.functions as base
    from formulas.functions import not_implemented

    from xlgen.engine.compiler import _SUBMODULES
    candidates = (name, "_XLFN." + name, "_XLFN._XLWS." + name, "_XLWS." + name)
    for table in itertools.chain([base.FUNCTIONS], (
            importlib.import_module(sub, "formulas.functions").FUNCTIONS for sub in _SUBMODULES)):
        hit = next((table[c] for c in candidates if c in table), None)
        if hit is not None and hit is not not_implemented:
            return hit
    return None


def test_a_function_is_found_where_searching_every_module_finds_it():
    from xlgen.engine import compiler
    from xlgen.engine.library_names import LIGHT_NAMES
    names = {n.upper().removeprefix("_XLFN.").removeprefix("_XLWS.") for table in LIGHT_NAMES.values()
             for n in table}
    names |= {"AVERAGE_GRAD", "NOT_A_FUNCTION", "STDEV.S", "NORM.DIST", "SIN", "ISERROR", "INDEX"}
    for name in sorted(names):
        expected = _searched_everywhere(name)
        assert compiler.library_function(name) is expected, name
        assert compiler.may_be_library_function(name) == (expected is not None), name


@pytest.mark.skipif(formulas.__version__ != FORMULAS_VERSION,
                    reason="another formulas version: the engine imports its modules instead")
def test_a_lookup_imports_only_the_module_holding_the_name():
    import subprocess
    import sys
    code = ("import sys; from xlgen.engine import compiler; "
            "assert compiler.library_function('ISERROR') is not None; "
            "assert not compiler.may_be_library_function('AVERAGE_GRAD'); "
            "print(sorted(m for m in sys.modules if m.startswith('formulas.functions.')))")
    root = str(Path(__file__).resolve().parents[2])  # this checkout's xlgen
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=root))
    assert done.stdout.strip() == "['formulas.functions.info']"
