"""Schema validity: every example workbook passes the Open XML SDK validator with 0 errors.

Excel "repairs" a file that breaks the OOXML schema (and silently drops what it could not
read: a chart axis, a defined name); the validator (the Open XML SDK compiled to
WebAssembly, run offline on Node; see xlgen/ooxml.py) finds those errors first. About 5 s
a file.
"""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT
from xlgen.ooxml import validate_ooxml, validator_path

WORKBOOKS = sorted((ROOT / "workbooks").glob("*.xlsx"))

pytestmark = pytest.mark.skipif(
    validator_path() is None,
    reason=("node is not installed (the OOXML validator runs on Node >= 20.19)" if shutil.which("node") is None
            else "the OOXML validator is not installed; run scripts/install-validator (CI does, in scripts/test)"))


def test_there_are_example_workbooks():
    assert WORKBOOKS, "workbooks/ is empty: run scripts/build-examples"


@pytest.mark.parametrize("path", WORKBOOKS, ids=[path.name for path in WORKBOOKS])
def test_example_workbook_is_schema_valid(path):
    errors = validate_ooxml(path)
    assert errors == [], f"{len(errors)} OOXML errors in {path.name}; first: {errors[0]}"


def test_the_validator_is_not_vacuous(tmp_path):
    """The same check finds the error when one axis of the smallest example's first chart is made invalid."""
    import zipfile
    if not WORKBOOKS:
        pytest.skip("no example workbook")
    source = min(WORKBOOKS, key=lambda path: path.stat().st_size)
    broken = tmp_path / "broken.xlsx"
    changed = None
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(broken, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in original.infolist():
            data = original.read(info)
            if changed is None and info.filename.startswith("xl/charts/chart"):
                data = data.replace(b'<c:orientation val="minMax"/>', b'<c:orientation val="sideways"/>', 1)
                changed = info.filename
            copy.writestr(info, data)
    assert changed, "no chart in the example"
    errors = validate_ooxml(broken)
    assert len(errors) == 1 and errors[0].startswith(f"/{changed} ") and "sideways" in errors[0], errors
