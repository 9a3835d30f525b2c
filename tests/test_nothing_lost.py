"""Nothing lost: an existing file survives a refused, failed, interrupted or killed build.

Writes go to `.NAME.<random>.tmp` in the target folder and are renamed into place, so
the old file is either wholly the old file or wholly the new one. The kill tests start a
real `python -m xlgen.cli build` large enough to take a moment, wait until its temporary
file appears in the folder (the build is then writing), and signal it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

# graddesc's 29 points x 150 epochs: 4,350 rows of the basic sheet, ~60,000 formula
# cells; the writer spends about a second with its temporary file in the folder.
KILL_EPOCHS = 150


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    return repr(value)


def data_and_basic(folder: Path, **top) -> Path:
    """A copy of the graddesc template with only its data and basic sheets."""
    raw = tomllib.loads((ROOT / "templates" / "graddesc.toml").read_text())
    raw.update(top)
    lines = [f"{key} = {toml_value(value)}" for key, value in raw.items() if not isinstance(value, dict)]
    lines += ["", "[data]"] + [f"{key} = {toml_value(value)}" for key, value in raw["data"].items()]
    lines += ["", "[sheets.basic]"] + [f"{key} = {toml_value(value)}" for key, value in raw["sheets"]["basic"].items()]
    path = folder / "data-and-basic.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def template(tmp_path) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir()
    return data_and_basic(folder)


@pytest.fixture()
def old_file(tmp_path, template) -> Path:
    """A real workbook already at the output path: the file that must not be lost."""
    folder = tmp_path / "out"
    folder.mkdir()
    path = folder / "book.xlsx"
    code, _, err = run_cli("build", template, "-o", path, "--set", "epochs=1", "--quiet")
    assert code == 0, err
    return path


def snapshot(folder: Path) -> dict:
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.iterdir()}


def temporary_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


# --- refusing and failing -----------------------------------------------------------

def test_existing_file_is_not_replaced_without_force(old_file, template):
    before = snapshot(old_file.parent)
    code, out, err = run_cli("build", template, "-o", old_file, "--set", "epochs=2", "--quiet")
    assert code == 2
    assert err == f"xlgen: error: {old_file} exists; use --force to replace it\n"
    assert snapshot(old_file.parent) == before  # same bytes, same mtime, no temporary file


def test_existing_file_that_is_not_a_workbook_is_not_replaced_either(tmp_path, template):
    precious = tmp_path / "notes.xlsx"
    precious.write_text("my notes, misnamed")
    code, _, err = run_cli("build", template, "-o", precious, "--quiet")
    assert code == 2 and "--force" in err
    assert precious.read_text() == "my notes, misnamed"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.xlsx", "templates"]


def test_force_with_a_bad_template_keeps_the_old_file(old_file, template):
    before = snapshot(old_file.parent)
    code, _, err = run_cli("build", template, "-o", old_file, "--force", "--set", "learning_rate=0")
    assert code == 2 and "learning_rate must be greater than 0" in err
    assert snapshot(old_file.parent) == before


def test_force_replaces_the_file_in_one_step(old_file, template):
    old = old_file.read_bytes()
    code, _, err = run_cli("build", template, "-o", old_file, "--force", "--set", "epochs=2", "--quiet")
    assert code == 0, err
    assert old_file.read_bytes() != old and old_file.read_bytes()[:2] == b"PK"
    assert temporary_files(old_file) == []
    assert sorted(path.name for path in old_file.parent.iterdir()) == ["book.xlsx"]


def test_a_failure_while_writing_removes_the_temporary_file(old_file, template, monkeypatch):
    """Whatever goes wrong between the temporary file and the rename (here the disk
    filling up inside XlsxWriter), the old file stays and the temporary file goes."""
    import xlgen.writer

    def disk_full(*_args, **_kwargs):
        assert temporary_files(old_file), "the temporary file should exist while writing"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xlgen.writer, "_write", disk_full)
    before = snapshot(old_file.parent)
    with pytest.raises(OSError, match="No space left"):
        run_cli("build", template, "-o", old_file, "--force", "--quiet")
    assert snapshot(old_file.parent) == before


# --- interrupted and killed builds --------------------------------------------------

def start_build(template: Path, output: Path, epochs: int = KILL_EPOCHS) -> subprocess.Popen:
    def as_in_a_terminal():  # a background job may inherit SIGINT ignored; Ctrl-C is not
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(
        [sys.executable, "-m", "xlgen.cli", "build", str(template), "-o", str(output), "--force",
         "--set", f"epochs={epochs}", "--quiet"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=as_in_a_terminal)


def wait_until_writing(process: subprocess.Popen, output: Path, zip_started: bool) -> Path:
    """The temporary file, once the build is writing into it: XlsxWriter is laying out the
    sheets (the file exists, still empty) or, with `zip_started`, writing the zip."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for temporary in temporary_files(output):
            try:
                size = temporary.stat().st_size
            except FileNotFoundError:
                continue
            if size > 0 or not zip_started:
                if not zip_started:
                    # past the file's creation, into XlsxWriter (a signal in the instant of
                    # creation is test_ctrl_c_as_the_temporary_file_is_created)
                    time.sleep(0.05)
                return temporary
        if process.poll() is not None:
            pytest.fail(f"the build ended (exit {process.returncode}) before it was seen writing; "
                        f"raise KILL_EPOCHS\n{process.stderr.read()}")
        time.sleep(0.002)
    process.kill()
    pytest.fail("the build never started writing")


@pytest.mark.parametrize("sig, zip_started", [
    (signal.SIGKILL, True),
    (signal.SIGTERM, True),
    (signal.SIGINT, False),
    (signal.SIGINT, True),
], ids=["SIGKILL-writing-the-zip", "SIGTERM-writing-the-zip", "SIGINT-laying-out-sheets", "SIGINT-writing-the-zip"])
def test_build_killed_while_writing_leaves_the_old_file(old_file, template, sig, zip_started):
    before = old_file.read_bytes()
    mtime = old_file.stat().st_mtime_ns
    process = start_build(template, old_file)
    try:
        wait_until_writing(process, old_file, zip_started)
        assert process.poll() is None
        process.send_signal(sig)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode != 0, "the build finished before the signal arrived"
    assert old_file.read_bytes() == before
    assert old_file.stat().st_mtime_ns == mtime
    # a killed process cannot clean up: at most its own temporary file stays behind
    others = {path.name for path in old_file.parent.iterdir()} - {old_file.name}
    assert all(name.startswith(f".{old_file.name}.") and name.endswith(".tmp") for name in others), others
    if sig == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    if sig in (signal.SIGINT, signal.SIGTERM):  # Python unwinds, the writer removes its temporary file
        assert temporary_files(old_file) == []
        assert "Traceback" not in err
    if sig == signal.SIGINT:
        assert err.strip() == "Aborted!"
    if sig == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM


def test_ctrl_c_as_the_temporary_file_is_created(old_file, template, monkeypatch):
    """Deterministically, the race a real Ctrl-C could hit: the interrupt arrives the
    instant the temporary file has been created."""
    import xlgen.writer
    real_open = os.open

    def interrupted_open(path, flags, *args, **kwargs):
        handle = real_open(path, flags, *args, **kwargs)
        if str(path).endswith(".tmp"):
            os.close(handle)
            raise KeyboardInterrupt
        return handle

    monkeypatch.setattr(xlgen.writer.os, "open", interrupted_open)
    before = snapshot(old_file.parent)
    with pytest.raises(KeyboardInterrupt):
        xlgen.writer.write_workbook(None, None, {}, old_file, force=True)
    monkeypatch.undo()
    assert snapshot(old_file.parent) == before


def test_ctrl_c_before_writing_leaves_nothing_behind(old_file, template):
    before = snapshot(old_file.parent)
    # 3,000 epochs: 87,000 rows, whose temporary file came 8 s after the start on this
    # machine (600 epochs' came at 2.0 s, and under 1.5 s on CI's faster one)
    process = start_build(template, old_file, epochs=20 * KILL_EPOCHS)
    try:
        time.sleep(1.5)  # past the imports, computing; the temporary file comes seconds later
        assert process.poll() is None and temporary_files(old_file) == [], "too late: the build is writing"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0 and "Traceback" not in err
    assert snapshot(old_file.parent) == before


# --- the same inputs give the same bytes --------------------------------------------

def test_same_inputs_give_the_same_bytes(tmp_path, template):
    """Twice in this process under different names, once more in another process, in
    another folder and time zone, with the --set options in the other order."""
    first, second = tmp_path / "first.xlsx", tmp_path / "elsewhere" / "second.xlsx"
    second.parent.mkdir()
    options = ["--set", "epochs=3", "--set", "learning_rate=0.0002", "--quiet"]
    assert run_cli("build", template, "-o", first, *options)[0] == 0
    assert run_cli("build", template, "-o", second, *options)[0] == 0
    assert first.read_bytes() == second.read_bytes()

    third = tmp_path / "third.xlsx"
    reordered = ["--set", "learning_rate=0.0002", "--set", "epochs=3", "--quiet"]
    environment = dict(os.environ, TZ="Pacific/Kiritimati", LC_ALL="C")
    result = subprocess.run([sys.executable, "-m", "xlgen.cli", "build", str(template), "-o", str(third), *reordered],
                            cwd=second.parent, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert third.read_bytes() == first.read_bytes()


def test_different_inputs_give_different_bytes(tmp_path, template):
    """The check above is not vacuous: one changed option changes the file."""
    one, other = tmp_path / "one.xlsx", tmp_path / "other.xlsx"
    assert run_cli("build", template, "-o", one, "--set", "epochs=3", "--quiet")[0] == 0
    assert run_cli("build", template, "-o", other, "--set", "epochs=3", "--set", "learning_rate=0.0002",
                   "--quiet")[0] == 0
    assert one.read_bytes() != other.read_bytes()


def test_rebuilt_file_keeps_its_permissions(old_file, template):
    old_file.chmod(0o644)
    code, _, err = run_cli("build", template, "-o", old_file, "--force", "--set", "epochs=2", "--quiet")
    assert code == 0, err
    assert old_file.stat().st_mode & 0o777 == 0o644


def test_new_file_follows_the_umask(tmp_path, template):
    previous = os.umask(0o022)
    try:
        path = tmp_path / "new.xlsx"
        code, _, err = run_cli("build", template, "-o", path, "--set", "epochs=2", "--quiet")
    finally:
        os.umask(previous)
    assert code == 0, err
    assert path.stat().st_mode & 0o777 == 0o644
