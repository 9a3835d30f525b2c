"""The user's commands end to end: `xlgen build` and `xlgen verify` against LibreOffice,
ironcalc and formualizer (the Rust engines, `pip install 'xlgen[bench]'`; load + evaluate only).

    python benchmarks/build_verify.py                    # about 3k, 30k and 300k formula cells
    python benchmarks/build_verify.py --sizes 30000 --repeat 1
    python benchmarks/build_verify.py --sizes 300000 --graddesc-epochs 1500 --repeat 1   # Excel's scale

The workbook is graddesc's `basic` sheet (with its data sheet) at as many epochs as the
size needs, built by `xlgen build` itself. Each command runs as its own process, as a
user runs it, so the times include start-up and imports, and verify includes reading,
recomputing, the NumPy reference, the comparison and the lint. LibreOffice recalculates
the same file in the same run (headless, forced recalculation, start-up included).
Figures, not pass/fail: the machine is a noisy 2-core box; the fastest of --repeat runs
counts.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verify_speed import _run_child, peers_installed  # noqa: E402  (each peer in its own child process)

ROOT = Path(__file__).resolve().parent.parent
BASIC_ONLY = """
title = "graddesc basic, for timing"
epochs = {epochs}
learning_rate = 0.0001
[data]
intercept = 30
slope = 2
x = [14, 86, 28, 51, 28, 29, 72, 62, 84, 15, 42, 62, 47, 35, 9, 38,
     44, 99, 13, 21, 28, 20, 8, 64, 99, 70, 27, 17, 8]
[sheets.basic]
layout = "basic"
initial = {{ a = 1, b = 1 }}
"""
FORMULA_CELLS_PER_EPOCH = 29 * 14 + 1   # 14 formula columns a row, one rmse a epoch


# runs one command and reports its own peak memory (getrusage of its only child)
PEAK_OF_CHILD = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
                 "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                 "sys.exit(done.returncode)")


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak MiB, stdout) of one command run as its own process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_OF_CHILD, *command], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return wall, peak_kib / 1024, done.stdout


# verify's first phases timed in one process: where a verify's time goes
PHASES = r"""
import json, sys, time
start = time.perf_counter()
from xlgen.engine import calculate, read_xlsx
from xlgen.gcpause import paused_gc
from xlgen.verify import verify_file  # noqa: F401  (verify's imports, as the command pays them)
imported = time.perf_counter()
with paused_gc():
    cpu = time.process_time()
    book = read_xlsx(sys.argv[1])
    read, read_cpu = time.perf_counter(), time.process_time() - cpu
    calculate(book)
    calculated = time.perf_counter()
print(json.dumps({"imports": imported - start, "read": read - imported, "read_cpu": read_cpu,
                  "calculate": calculated - read}))
"""


def phases(book: Path, repeat: int) -> dict:
    """Seconds of verify's imports, reading (wall and CPU) and calculation; fastest run each."""
    runs = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", PHASES, str(book)], capture_output=True, text=True,
                              cwd=ROOT, check=True)
        runs.append(json.loads(done.stdout))
    return {key: min(run[key] for run in runs) for key in runs[0]}


def measure(command: list[str], repeat: int) -> tuple[float, float, str]:
    """Fastest of `repeat` runs (the machine is shared and noisy)."""
    return min((timed(command) for _ in range(repeat)), key=lambda run: run[0])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,30000,300000", help="formula cells, comma separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest counts")
    parser.add_argument("--graddesc-epochs", default="",
                        help="also the whole graddesc workbook at these epochs (1500: ~2.9M formula cells)")
    args = parser.parse_args(argv)
    xlgen = [sys.executable, "-m", "xlgen.cli"]
    soffice = shutil.which("soffice")
    workdir = Path(tempfile.mkdtemp(prefix="xlgen-build-verify-"))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    # as a user's second run finds it: xlgen's bytecode compiled (PYTHONDONTWRITEBYTECODE, set on
    # some machines, would otherwise make every run compile xlgen from source, ~0.1 s)
    compileall.compile_dir(ROOT / "xlgen", quiet=1)
    if not soffice:
        print("LibreOffice: soffice is not on PATH (scripts/install-libreoffice); no ratios")
    books = []  # (what, build arguments, file): graddesc's basic sheet at each size...
    for size in [int(s) for s in args.sizes.split(",") if s]:
        epochs = max(1, round(size / FORMULA_CELLS_PER_EPOCH))
        template = workdir / f"basic-{epochs}.toml"
        template.write_text(BASIC_ONLY.format(epochs=epochs))
        books.append((f"{epochs} epochs of the basic sheet", [str(template)], workdir / f"basic-{epochs}.xlsx"))
    for epochs in [int(e) for e in args.graddesc_epochs.split(",") if e]:  # ...and the whole workbook
        books.append((f"graddesc, {epochs} epochs, every sheet", ["graddesc", "--set", f"epochs={epochs}"],
                      workdir / f"graddesc-{epochs}.xlsx"))
    per_cell = []  # (cells, build s, verify s)
    try:
        for what, build_args, book in books:
            build_time, build_peak, _ = measure(xlgen + ["build", *build_args, "-o", str(book), "--force", "--quiet"],
                                                args.repeat)
            verify_time, verify_peak, report = measure(xlgen + ["verify", str(book), "--quiet"], args.repeat)
            verdict = report.strip().splitlines()[-1]
            cells = int(verdict.split(" formula cells")[0].split()[-1].replace(",", ""))
            per_cell.append((cells, build_time, verify_time))
            print(f"\n== {cells:,} formula cells ({what}, {book.stat().st_size / 1e6:.1f} MB)")
            print(f"xlgen build   {build_time:5.2f} s  peak {build_peak:4.0f} MiB; {cells / build_time:,.0f} cells/s")
            print(f"xlgen verify  {verify_time:5.2f} s  peak {verify_peak:4.0f} MiB  ({verdict.split(' (')[0]}); "
                  f"{cells / verify_time:,.0f} cells/s")
            split = phases(book, args.repeat)
            rest = verify_time - split["imports"] - split["read"] - split["calculate"]
            print(f"  of which: start-up and imports {split['imports']:.2f} s, reading {split['read']:.2f} s "
                  f"(CPU {split['read_cpu']:.2f} s), calculating {split['calculate']:.2f} s, the rest "
                  f"(reference, comparison, lint, report) about {rest:.2f} s")
            for peer in peers_installed():  # bare load + evaluate, no checking: the bar to beat
                run = min((_run_child(peer, str(book)) for _ in range(args.repeat)),
                          key=lambda run: run["process_wall"])
                print(f"{peer:13} {run['process_wall']:5.2f} s  peak {run['peak_mib']:4.0f} MiB  "
                      f"-> xlgen verify / {peer} = {verify_time / run['process_wall']:.2f}")
            if soffice:
                outdir = tempfile.mkdtemp(prefix="lo-out-")
                lo = min((_run_child("soffice", str(book), outdir) for _ in range(args.repeat)),
                         key=lambda run: run["wall"])
                shutil.rmtree(outdir, ignore_errors=True)
                print(f"LibreOffice   {lo['wall']:5.2f} s  peak {lo['peak_mib_soffice']:4.0f} MiB  "
                      f"-> xlgen verify / LibreOffice = {verify_time / lo['wall']:.2f}")
            book.unlink()   # a 2.9M-cell file is 45 MB
        if len(per_cell) > 1:  # is the cost per cell flat? (start-up weighs on the small sizes)
            cells0, build0, verify0 = per_cell[0]
            print("\ncost per cell against the first size (1.00 = flat):")
            for cells, build_time, verify_time in per_cell:
                print(f"{cells:>11,} cells  build {1e6 * build_time / cells:5.1f} us/cell "
                      f"({build_time / cells / (build0 / cells0):.2f})  verify {1e6 * verify_time / cells:5.1f} us/cell "
                      f"({verify_time / cells / (verify0 / cells0):.2f})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
