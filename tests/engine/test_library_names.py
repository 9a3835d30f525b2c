"""The list of formulas' scipy-backed function names (which lets a workbook LAMBDA's name
be resolved without importing scipy) matches the installed formulas."""

import formulas
import pytest

from xlgen.engine.library_names import FORMULAS_VERSION, HEAVY_NAMES


@pytest.mark.skipif(formulas.__version__ != FORMULAS_VERSION,
                    reason="another formulas version: the engine imports its modules instead")
def test_heavy_names_are_the_stat_and_comp_modules_names():
    import formulas.functions.comp as comp
    import formulas.functions.stat as stat
    assert HEAVY_NAMES == set(stat.FUNCTIONS) | set(comp.FUNCTIONS)
