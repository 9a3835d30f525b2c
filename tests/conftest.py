import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
COURSE_FIXTURE = SHARED / "fixtures" / "graddesc-course.xlsx"
COURSE_X = [14, 86, 28, 51, 28, 29, 72, 62, 84, 15, 42, 62, 47, 35, 9, 38,
            44, 99, 13, 21, 28, 20, 8, 64, 99, 70, 27, 17, 8]


def run_cli(*args):
    """Run the xlgen command in-process; returns (exit code, stdout, stderr)."""
    from click.testing import CliRunner
    from xlgen.cli import main
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="session")
def built_graddesc(tmp_path_factory):
    """graddesc built once for the session with default settings."""
    from xlgen.build import build
    path = tmp_path_factory.mktemp("graddesc") / "graddesc.xlsx"
    build("graddesc", path)
    return path
