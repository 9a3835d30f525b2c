"""Schema and semantic validation of .xlsx files with the Open XML SDK.

Excel refuses or "repairs" files that break the OOXML schema, and a repaired file loses
what was wrong without saying what it was. The npm package @ooxml-tools/validate (the
Open XML SDK compiled to WebAssembly, offline) finds those errors before a user does.
It is pinned in tools/ooxml-validate and installed by scripts/install-validator.

What it checks: part schemas (elements, attributes, values), relationships, semantic
constraints. What it does not: formula text and defined-name syntax (a name containing a
space passes). Like the SDK's default it stops after 1000 errors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from xlgen.errors import XlgenError

VALIDATOR_DIR = Path(__file__).resolve().parent.parent / "tools" / "ooxml-validate"
VALIDATOR_BIN = VALIDATOR_DIR / "node_modules" / ".bin" / "ooxml-validate"
NOT_INSTALLED = "the OOXML validator is not installed; run scripts/install-validator (needs Node >= 20.19)"

# The CLI crashes on errors that belong to no XML element (package-level errors such as a
# missing [Content_Types].xml) because it reads error.Path.XPath of a null Path.
_PACKAGE_LEVEL_CRASH = "Cannot read properties of null (reading 'XPath')"
_FIRST_ERROR_LINE = re.compile(r"^(?:\w*Error): (.*)$", re.MULTILINE)


def validator_path() -> str | None:
    """The validator executable, or None when it (or node, which runs it) is missing."""
    if shutil.which("node") is None or not os.access(VALIDATOR_BIN, os.X_OK):
        return None
    return str(VALIDATOR_BIN)


def validate_ooxml(path: str | os.PathLike, timeout: float = 600) -> list[str]:
    """Validate the workbook at `path`; return one line per error, empty when valid.

    Each line reads "/xl/worksheets/sheet1.xml /x:worksheet[1]/...: Sch_...: description".
    A file the SDK cannot open at all (not a zip, a missing part) gives one "package:" line.
    """
    validator = validator_path()
    if validator is None:
        raise XlgenError(NOT_INSTALLED)
    source = Path(path)
    if not source.is_file():
        raise XlgenError(f"{source}: no such file")

    try:
        result = subprocess.run(
            # --format: detection goes by the file name, and ours may not end in .xlsx
            [validator, str(source), "--output-format", "json", "--format", "xlsx"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise XlgenError(f"the OOXML validator timed out after {timeout:g} s on {source}") from None

    if result.returncode == 0:
        return [_describe(error) for error in json.loads(result.stdout)]

    first_error = _FIRST_ERROR_LINE.search(result.stderr)
    message = first_error.group(1).strip() if first_error else result.stderr.strip()[-300:]
    if "at validate (" not in result.stderr:
        # failed before it looked at the file: node, the installation, the arguments
        raise XlgenError(f"the OOXML validator failed: {message}")
    if _PACKAGE_LEVEL_CRASH in message:
        return ["package: invalid package structure (a package-level error such as a missing "
                "[Content_Types].xml; the validator cannot describe it further)"]
    return [f"package: cannot be opened as a spreadsheet: {message}"]


def _describe(error: dict) -> str:
    """One line from the validator's JSON record {description, path{partUri, xpath}, id}."""
    where = error.get("path") or {}
    location = " ".join(part for part in (where.get("partUri"), where.get("xpath")) if part)
    description = " ".join(str(error["description"]).split())
    return f"{location}: {error['id']}: {description}"
