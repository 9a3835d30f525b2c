"""Running one damaged workbook through `xlgen verify` and judging what the user saw.

Shared by tests/fuzz/ and benchmarks/fuzz.py. The command runs in-process through
click (the same code path as the real command, minus interpreter start-up); anything
that escapes as an exception is what a real process would print as a traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# ../shared beside the repository; a worktree in /work/wt/NAME finds it two levels up
SHARED_FIXTURES = next((folder / "shared" / "fixtures" for folder in (ROOT.parent, ROOT.parent.parent)
                        if (folder / "shared" / "fixtures").is_dir()), ROOT.parent / "shared" / "fixtures")

# the small books built for fuzzing: --set epochs=1 keeps each verify well under a second
SMALL_BUILDS = ("graddesc", "average-grad", "two-neuron")


def corpus(folder: Path, include_large: bool = True) -> list[Path]:
    """Workbooks to damage: small builds of each template (made in `folder` once), the
    course's own files from ../shared/fixtures, and (include_large) workbooks/*.xlsx."""
    from xlgen.build import build
    books = []
    for name in SMALL_BUILDS:
        path = folder / f"{name}-epochs1.xlsx"
        if not path.exists():
            build(name, path, ["epochs=1"], force=True)
        books.append(path)
    books += sorted(SHARED_FIXTURES.glob("*.xlsx")) + sorted(SHARED_FIXTURES.glob("course22/*.xlsx"))
    if include_large:
        books += sorted((ROOT / "workbooks").glob("*.xlsx"))
    return books


def run_verify(path) -> tuple[int, str, str, str | None]:
    """(exit code, stdout, stderr, traceback text or None) of `xlgen verify PATH`."""
    from xlgen.cli import main
    out, err = io.StringIO(), io.StringIO()
    code, crash = 0, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main.main(["verify", str(path), "--quiet"], prog_name="xlgen", standalone_mode=True)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except BaseException:  # what a real process would show as a traceback
            crash = traceback.format_exc()
            code = 1
    return code, out.getvalue(), err.getvalue(), crash


def judge(code: int, out: str, err: str, crash: str | None) -> str | None:
    """What is wrong with this outcome for the user, or None when it is as promised:
    exit 0, 1 or 2; exit 2 prints exactly one line (`xlgen: error: ...`) and no traceback."""
    if crash is not None:
        return "traceback: " + crash.strip().splitlines()[-1]
    if "Traceback (most recent call last)" in out + err:
        return "traceback printed"
    if code not in (0, 1, 2):
        return f"exit code {code}"
    if code == 2:
        lines = err.splitlines()
        if len(lines) != 1 or not lines[0].startswith("xlgen: error: ") or out:
            return f"exit 2 with {len(lines)} lines on stderr: {err[:300]!r}"
    elif err.strip():
        return f"exit {code} with stderr: {err[:300]!r}"
    return None


def limit_memory(bytes_: int) -> None:
    """Cap this process's address space (a runaway case fails instead of swapping)."""
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (bytes_, bytes_))


def real_process(path, timeout: float = 60) -> tuple[int, str, str]:
    """`python -m xlgen.cli verify PATH` as its own process."""
    import subprocess
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "xlgen.cli", "verify", str(path), "--quiet"],
                            capture_output=True, text=True, cwd=ROOT, timeout=timeout, env=environment)
    return result.returncode, result.stdout, result.stderr
