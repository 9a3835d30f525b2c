"""How fast does xlgen recompute a workbook, against formulas' ExcelModel, LibreOffice,
and the Rust engines ironcalc and formualizer (pip install 'xlgen[bench]')?

    python benchmarks/verify_speed.py                  # 3k, 30k, 300k formula cells
    python benchmarks/verify_speed.py --quick          # ExcelModel only at 3k
    python benchmarks/verify_speed.py --sizes 30000 --excelmodel-max 0 --repeat 1

The workbook is the course's per-row SGD sheet (make_sgd_workbook), written by XlsxWriter
with cached values. Every measurement runs in its own child process, so peak memory
(VmHWM / RUSAGE_CHILDREN) is that engine's alone.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

FORMULAS_PER_ROW = 10
FIRST_ROW = 4
LEARNING_RATE = 0.001

LO_PROFILE_SETTINGS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def make_sgd_workbook(path, formula_cells: int, seed: int = 0) -> int:
    """Write a per-row SGD sheet with about `formula_cells` formula cells; returns the count.

    Columns: A x, B y (constants); C intercept (first row =$C$1, then the previous row's
    new b), D slope, E y_pred, F err^2, G err with b+0.01, H est de/db, I de/db, J de/da,
    K new a, L new b: 10 formula cells a row, each row reading the one above, plus one
    =SQRT(SUM(F..)/COUNT(F..)) in H1. Cached values are computed here, as Excel would.
    """
    import numpy as np
    import xlsxwriter

    rows = max(1, (formula_cells - 1) // FORMULAS_PER_ROW)
    rng = np.random.default_rng(seed)
    xs = rng.uniform(0.0, 10.0, rows).round(3)
    ys = (2.0 * xs + 30.0 + rng.normal(0.0, 1.0, rows)).round(3)
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("sgd")
    intercept0, slope0, lr = 1.0, 1.0, LEARNING_RATE
    last = FIRST_ROW + rows - 1
    sse = 0.0
    errors = []
    # constant_memory mode needs rows written in order: row 1 first (H1 needs all rows,
    # so its cached value is computed before writing anything)
    b, a = intercept0, slope0
    for i in range(rows):
        x, y = float(xs[i]), float(ys[i])
        pred = b + a * x
        err2 = (y - pred) ** 2
        errors.append(err2)
        dedb = 2 * (pred - y)
        a, b = a - dedb * x * lr, b - dedb * lr
    for err2 in errors:
        sse += err2
    rmse = math.sqrt(sse / rows)
    sheet.write_string(0, 1, "b")
    sheet.write_number(0, 2, intercept0)
    sheet.write_string(0, 4, "learn")
    sheet.write_number(0, 5, lr)
    sheet.write_formula(0, 7, f"=SQRT(SUM(F{FIRST_ROW}:F{last})/COUNT(F{FIRST_ROW}:F{last}))",
                        None, rmse)
    sheet.write_string(1, 1, "a")
    sheet.write_number(1, 2, slope0)
    for col, title in enumerate(["x", "y", "intercept", "slope", "y_pred", "err^2", "errb1",
                                 "est de/db", "de/db", "de/da", "new a", "new b"]):
        sheet.write_string(2, col, title)
    b, a = intercept0, slope0
    for i in range(rows):
        r = FIRST_ROW + i
        x, y = float(xs[i]), float(ys[i])
        pred = b + a * x
        err2 = (y - pred) ** 2
        errb1 = (((b + 0.01) + x * a) - y) ** 2
        est_dedb = (errb1 - err2) / 0.01
        dedb = 2 * (pred - y)
        deda = dedb * x
        new_a, new_b = a - deda * lr, b - dedb * lr
        row = r - 1
        sheet.write_number(row, 0, x)
        sheet.write_number(row, 1, y)
        sheet.write_formula(row, 2, "=$C$1" if i == 0 else f"=L{r - 1}", None, b)
        sheet.write_formula(row, 3, "=$C$2" if i == 0 else f"=K{r - 1}", None, a)
        sheet.write_formula(row, 4, f"=C{r}+D{r}*A{r}", None, pred)
        sheet.write_formula(row, 5, f"=(B{r}-E{r})^2", None, err2)
        sheet.write_formula(row, 6, f"=(((C{r}+0.01)+A{r}*D{r})-B{r})^2", None, errb1)
        sheet.write_formula(row, 7, f"=(G{r}-F{r})/0.01", None, est_dedb)
        sheet.write_formula(row, 8, f"=2*(E{r}-B{r})", None, dedb)
        sheet.write_formula(row, 9, f"=I{r}*A{r}", None, deda)
        sheet.write_formula(row, 10, f"=D{r}-J{r}*$F$1", None, new_a)
        sheet.write_formula(row, 11, f"=C{r}-I{r}*$F$1", None, new_b)
        b, a = new_b, new_a
    book.close()
    return rows * FORMULAS_PER_ROW + 1


# --- child processes: one engine each ----------------------------------------------------
def _peak_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_xlgen(path):
    t0 = time.perf_counter()
    from xlgen.engine import calculate, read_xlsx
    t1 = time.perf_counter()
    book = read_xlsx(path)
    t2 = time.perf_counter()
    calc = calculate(book)
    t3 = time.perf_counter()
    worst = 0.0
    for sheet in book.sheets:
        for (r, c), cached in sheet.cached.items():
            value = calc.values[(sheet.name, r, c)]
            worst = max(worst, abs(value - cached) / max(abs(cached), 1e-300))
    return {"import": t1 - t0, "read": t2 - t1, "calculate": t3 - t2, "cells": len(calc.values),
            "worst_rel_diff_vs_cached": worst}


def _child_openpyxl(path):
    """openpyxl's full load, for comparison with read_xlsx (formulas and values only)."""
    t0 = time.perf_counter()
    import openpyxl
    t1 = time.perf_counter()
    book = openpyxl.load_workbook(path)
    formulas = {}
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    formulas[(sheet.title, cell.row, cell.column)] = cell.value[1:]
    t2 = time.perf_counter()
    return {"import": t1 - t0, "load": t2 - t1, "formulas": len(formulas)}


def _child_formulas(path):
    import formulas
    t0 = time.perf_counter()
    model = formulas.ExcelModel().loads(path).finish()
    t1 = time.perf_counter()
    model.calculate()
    t2 = time.perf_counter()
    return {"load": t1 - t0, "calculate": t2 - t1}


def _child_ironcalc(path):
    """IronCalc (Rust, pip `ironcalc`): load the .xlsx and evaluate every formula."""
    t0 = time.perf_counter()
    import ironcalc
    t1 = time.perf_counter()
    model = ironcalc.load_from_xlsx(path, "en", "UTC")
    t2 = time.perf_counter()
    model.evaluate()
    t3 = time.perf_counter()
    return {"import": t1 - t0, "load": t2 - t1, "calculate": t3 - t2}


def _child_formualizer(path):
    """formualizer (Rust, pip `formualizer`): load the .xlsx and evaluate every formula."""
    t0 = time.perf_counter()
    import formualizer
    t1 = time.perf_counter()
    book = formualizer.load_workbook(path)
    t2 = time.perf_counter()
    book.evaluate_all()
    t3 = time.perf_counter()
    return {"import": t1 - t0, "load": t2 - t1, "calculate": t3 - t2}


def peers_installed() -> list[str]:
    """The Rust engines of the optional `bench` extra that this machine has."""
    import importlib.util
    return [name for name in ("ironcalc", "formualizer") if importlib.util.find_spec(name)]


def _child_soffice(path, outdir):
    profile = tempfile.mkdtemp(prefix="lo-profile-")
    os.makedirs(os.path.join(profile, "user"), exist_ok=True)
    with open(os.path.join(profile, "user", "registrymodifications.xcu"), "w") as fh:
        fh.write(LO_PROFILE_SETTINGS)
    cmd = [shutil.which("soffice"), f"-env:UserInstallation=file://{profile}", "--headless",
           "--convert-to", "xlsx", "--outdir", outdir, path]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    t1 = time.perf_counter()
    shutil.rmtree(profile, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall": t1 - t0, "returncode": done.returncode, "peak_mib_soffice": peak}


def _run_child(kind, *args, timeout=3600):
    """Run one measurement in a fresh interpreter; returns its JSON plus wall time and peak."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, *args]
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall"] = wall
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,30000,300000",
                        help="formula-cell counts, comma separated")
    parser.add_argument("--excelmodel-max", type=int, default=30000,
                        help="largest size to run formulas' ExcelModel on (0: never)")
    parser.add_argument("--quick", action="store_true", help="ExcelModel only up to 3,000 cells")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of xlgen and LibreOffice per size; the fastest counts "
                             "(the machine is shared and noisy)")
    parser.add_argument("--no-openpyxl", action="store_true",
                        help="skip timing openpyxl's full load")
    parser.add_argument("--keep", help="directory to keep the generated workbooks in")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, *rest = args.child
        result = {"xlgen": _child_xlgen, "formulas": _child_formulas,
                  "openpyxl": _child_openpyxl, "soffice": _child_soffice,
                  "ironcalc": _child_ironcalc, "formualizer": _child_formualizer}[kind](*rest)
        result["peak_mib"] = _peak_rss_mib()
        print(json.dumps(result))
        return 0

    excelmodel_max = 3000 if args.quick else args.excelmodel_max
    soffice = shutil.which("soffice")
    workdir = args.keep or tempfile.mkdtemp(prefix="xlgen-bench-")
    os.makedirs(workdir, exist_ok=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; workbooks in {workdir}")
    if not soffice:
        print("LibreOffice: soffice is not on PATH, so no LibreOffice figures "
              "(ENGINES.md measured ~4.3-5.6 s at 300k cells on this kind of machine)")
    for size in [int(s) for s in args.sizes.split(",") if s]:
        path = os.path.join(workdir, f"sgd-{size}.xlsx")
        t0 = time.perf_counter()
        cells = make_sgd_workbook(path, size)
        made = time.perf_counter() - t0
        print(f"\n== {cells:,} formula cells ({os.path.getsize(path) / 1e6:.1f} MB, "
              f"written in {made:.1f} s)")
        ours = min((_run_child("xlgen", path) for _ in range(args.repeat)),
                   key=lambda run: run["process_wall"])
        inner = ours["read"] + ours["calculate"]
        print(f"xlgen    read_xlsx {ours['read']:.2f} s + calculate {ours['calculate']:.2f} s "
              f"= {inner:.2f} s; process {ours['process_wall']:.2f} s incl. imports "
              f"{ours['import']:.2f} s; peak {ours['peak_mib']:.0f} MiB; "
              f"worst rel. diff vs cached {ours['worst_rel_diff_vs_cached']:.1e}; "
              f"{cells / ours['process_wall']:,.0f} cells/s")
        if not args.no_openpyxl:
            op = _run_child("openpyxl", path)
            print(f"openpyxl load_workbook (full load, for comparison with read_xlsx) "
                  f"{op['load']:.2f} s; peak {op['peak_mib']:.0f} MiB  -> "
                  f"read_xlsx is {op['load'] / ours['read']:.1f}x faster")
        if cells <= excelmodel_max:
            theirs = _run_child("formulas", path)
            total = theirs["load"] + theirs["calculate"]
            print(f"formulas ExcelModel load {theirs['load']:.1f} s + calculate "
                  f"{theirs['calculate']:.1f} s = {total:.1f} s; peak {theirs['peak_mib']:.0f} MiB"
                  f"  -> ExcelModel/xlgen = {total / inner:.0f}x")
        else:
            print(f"formulas ExcelModel: skipped (> {excelmodel_max:,} cells)")
        for peer in peers_installed():
            run = min((_run_child(peer, path) for _ in range(args.repeat)),
                      key=lambda run: run["process_wall"])
            print(f"{peer:12} load {run['load']:.2f} s + evaluate {run['calculate']:.2f} s; process "
                  f"{run['process_wall']:.2f} s; peak {run['peak_mib']:.0f} MiB  -> xlgen/{peer} = "
                  f"{ours['process_wall'] / run['process_wall']:.2f} (whole processes), "
                  f"{cells / run['process_wall']:,.0f} cells/s")
        if soffice:
            outdir = tempfile.mkdtemp(prefix="lo-out-")
            lo = min((_run_child("soffice", path, outdir) for _ in range(args.repeat)),
                     key=lambda run: run["wall"])
            shutil.rmtree(outdir, ignore_errors=True)
            status = "" if lo["returncode"] == 0 else f" (exit {lo['returncode']})"
            print(f"LibreOffice headless recalc {lo['wall']:.2f} s, peak "
                  f"{lo['peak_mib_soffice']:.0f} MiB{status}  -> xlgen/LibreOffice = "
                  f"{ours['process_wall'] / lo['wall']:.2f} (whole processes)")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
