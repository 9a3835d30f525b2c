"""The command line: list, build, verify, and the one-line errors with exit code 2."""

import json

import pytest

from tests.conftest import run_cli


def test_list_names_each_template_on_one_line():
    code, out, _ = run_cli("list")
    assert code == 0
    assert any(line.startswith("graddesc ") for line in out.splitlines())


def test_build_then_verify(tmp_path):
    out_path = tmp_path / "g.xlsx"
    code, out, err = run_cli("build", "graddesc", "-o", out_path, "--set", "epochs=3", "--quiet")
    assert code == 0 and out_path.exists(), err
    code, out, _ = run_cli("verify", out_path)
    assert code == 0 and "OK:" in out


def test_build_refuses_to_overwrite_without_force(tmp_path):
    out_path = tmp_path / "g.xlsx"
    out_path.write_bytes(b"precious")
    code, _, err = run_cli("build", "graddesc", "-o", out_path)
    assert code == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    assert out_path.read_bytes() == b"precious"
    code, _, _ = run_cli("build", "graddesc", "-o", out_path, "--force", "--set", "epochs=1")
    assert code == 0 and out_path.read_bytes()[:2] == b"PK"


@pytest.mark.parametrize("args, message", [
    (["build", "graddesc", "--set", "learning_rate=-1"], "greater than 0"),
    (["build", "graddesc", "--set", "epochs=0"], "whole number"),
    (["build", "graddesc", "--set", "bogus=1"], "unknown key"),
    (["build", "nosuchtemplate"], "unknown template"),
    (["build"], "name a template"),
])
def test_bad_build_input_is_one_line_and_exit_2(tmp_path, args, message):
    out_path = tmp_path / "never.xlsx"
    code, out, err = run_cli(*args, "-o", out_path) if args != ["build"] else run_cli(*args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out_path.exists()
    assert list(tmp_path.iterdir()) == []   # no temporary file left behind either


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no such file"),
    (lambda p: (p.mkdir(), p)[1], "directory"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    (lambda p: (p.write_text("x,y\n1,2\n"), p)[1], "not a zip"),
])
def test_bad_verify_input_is_one_line_and_exit_2(tmp_path, make, message):
    path = make(tmp_path / "input.xlsx")
    code, out, err = run_cli("verify", path)
    assert code == 2, out
    assert err.startswith("xlgen: error: ") and len(err.strip().splitlines()) == 1
    assert message in err


def test_verify_json_on_a_failing_file_has_the_fields(built_graddesc, tmp_path):
    from tests.workbook_files import read_formula, replace_formula
    mutated = tmp_path / "m.xlsx"
    replace_formula(built_graddesc, mutated, "basic", "F5", read_formula(built_graddesc, "basic", "F5") + "+1")
    code, out, _ = run_cli("verify", mutated, "--json")
    report = json.loads(out)
    assert code == 1
    assert {"ok", "cells_checked", "first_divergence", "mismatches"} <= set(report)
    assert report["first_divergence"] == "basic!F5"
    first = report["mismatches"][0]
    assert set(first) >= {"cell", "expected", "actual"} and first["cell"] == "basic!F5"
    code, text, _ = run_cli("verify", mutated)
    assert code == 1 and "basic!F5" in text and "=(B5-E5)^2+1" in text


@pytest.mark.parametrize("flags", [["--json"], ["--quiet"], ["--strict", "--quiet"]])
def test_verify_as_its_own_process_writes_all_and_exits_as_in_process(built_graddesc, tmp_path, flags):
    """The command line's verify leaves at once once its report is written (cli.leave: the
    heap is not freed object by object); to a pipe and to a file, what it writes and its exit
    code are those of the same command run in-process, which never leaves that way."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    from tests.workbook_files import replace_formula
    failing = tmp_path / "failing.xlsx"
    replace_formula(built_graddesc, failing, "basic", "M5", "K5*1.5")
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    for path in (built_graddesc, failing):
        code, out, _ = run_cli("verify", path, *flags)
        piped = subprocess.run([sys.executable, "-m", "xlgen.cli", "verify", str(path), *flags],
                               capture_output=True, text=True, env=env, cwd=tmp_path)
        assert (piped.returncode, piped.stdout, piped.stderr) == (code, out, "")
        written = tmp_path / "report.txt"
        with open(written, "w") as into:
            to_file = subprocess.run([sys.executable, "-m", "xlgen.cli", "verify", str(path), *flags],
                                     stdout=into, env=env, cwd=tmp_path)
        assert (to_file.returncode, written.read_text()) == (code, out)
    assert code == 1
