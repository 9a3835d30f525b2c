"""`xlgen build --all` end to end: wall, CPU (user + sys of every process) and peak memory.

    python benchmarks/build_all.py                          # 5 runs of this checkout
    python benchmarks/build_all.py --against /tmp/old       # alternating with another checkout
    python benchmarks/build_all.py --timeline               # which worker built what, when

Each run is `python -m xlgen.cli build --all --quiet` as its own process in the checkout
(it rewrites that checkout's workbooks/, byte for byte the same), so the times include
start-up, imports and the worker processes. xlgen's bytecode is compiled first, as a
user's second run finds it (PYTHONDONTWRITEBYTECODE, set on some machines, would
otherwise make every run compile from source). Figures, not pass/fail: on a shared 2-core
machine the wall time follows the load (printed with each run); CPU time follows it less.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# one build --all as the only child of a small wrapper that reports the rusage of its
# children: every worker is waited for by the command, so its CPU is counted
RUN = ("import json, resource, subprocess, sys, time; start = time.perf_counter(); "
       "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
       "wall = time.perf_counter() - start; usage = resource.getrusage(resource.RUSAGE_CHILDREN); "
       "print(json.dumps({'wall': wall, 'cpu': usage.ru_utime + usage.ru_stime, 'peak_mib': usage.ru_maxrss / 1024, "
       "'code': done.returncode, 'out': done.stdout, 'err': done.stderr[-2000:]}))")

# the workers' view: each template's start, end and CPU, by worker process
TIMELINE = r"""
import json, os, sys, time
start = time.perf_counter()
import xlgen.build as build
from xlgen.templates import available_templates
plain = build.build_example
def timed(name):
    began, cpu = time.perf_counter(), time.process_time()
    result = plain(name)
    return result + ((name, os.getpid(), began - start, time.perf_counter() - start, time.process_time() - cpu),)
build.build_example = timed
rows = [result[2] for result in build.ExampleBuilds(available_templates())]
print(json.dumps({"rows": rows, "end": time.perf_counter() - start, "main_cpu": time.process_time()}))
"""


def run_once(checkout: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run([sys.executable, "-c", RUN, sys.executable, "-m", "xlgen.cli", "build", "--all", "--quiet"],
                          capture_output=True, text=True, cwd=checkout, env=env, check=True)
    result = json.loads(done.stdout)
    if result["code"] != 0:
        raise RuntimeError(f"build --all in {checkout} exited {result['code']}:\n{result['err']}")
    return result


def timeline(checkout: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(checkout))
    done = subprocess.run([sys.executable, "-c", TIMELINE], capture_output=True, text=True, cwd=checkout,
                          env=env, check=True)
    found = json.loads(done.stdout)
    workers = {}
    for name, pid, began, ended, cpu in found["rows"]:
        workers.setdefault(pid, []).append((began, ended, cpu, name))
    print(f"load {os.getloadavg()[0]:.2f}; main process CPU {found['main_cpu']:.2f} s (imports, forks, waiting)")
    for number, rows in enumerate(workers.values(), 1):
        print(f"worker {number}: CPU {sum(row[2] for row in rows):.2f} s")
        for began, ended, cpu, name in sorted(rows):
            print(f"  {name:14} {began:5.2f} -> {ended:5.2f} s  CPU {cpu:.2f} s")
    print(f"all done at {found['end']:.2f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each checkout")
    parser.add_argument("--against", type=Path, help="another checkout (e.g. the previous main), run alternately")
    parser.add_argument("--timeline", action="store_true", help="one in-process run: each worker's templates")
    args = parser.parse_args(argv)
    checkouts = [ROOT] + ([args.against.resolve()] if args.against else [])
    for checkout in checkouts:
        compileall.compile_dir(checkout / "xlgen", quiet=1)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; bytecode compiled")
    if args.timeline:
        timeline(ROOT)
        return 0
    results = {checkout: [] for checkout in checkouts}
    for number in range(args.repeat):
        for checkout in checkouts if number % 2 == 0 else checkouts[::-1]:
            load = os.getloadavg()[0]
            result = run_once(checkout)
            results[checkout].append(result)
            print(f"{str(checkout):40} wall {result['wall']:5.2f} s  CPU {result['cpu']:5.2f} s  "
                  f"peak {result['peak_mib']:4.0f} MiB  (load before {load:.2f})", flush=True)
    print()
    for checkout, runs in results.items():
        walls, cpus = [run["wall"] for run in runs], [run["cpu"] for run in runs]
        print(f"{str(checkout):40} wall median {statistics.median(walls):5.2f} s (best {min(walls):.2f})  "
              f"CPU median {statistics.median(cpus):5.2f} s (best {min(cpus):.2f})  "
              f"peak {max(run['peak_mib'] for run in runs):.0f} MiB")
    if args.against:
        first, second = (results[checkout] for checkout in checkouts)
        print(f"this / other: wall {statistics.median(r['wall'] for r in first) / statistics.median(r['wall'] for r in second):.2f}, "
              f"CPU {statistics.median(r['cpu'] for r in first) / statistics.median(r['cpu'] for r in second):.2f}")
        if results[checkouts[0]][-1]["out"].replace(str(checkouts[0]), "") != \
                results[checkouts[1]][-1]["out"].replace(str(checkouts[1]), ""):
            print("the two checkouts printed different lines")
    for checkout in checkouts:
        dirty = subprocess.run(["git", "status", "--porcelain", "workbooks"], capture_output=True, text=True,
                               cwd=checkout).stdout.strip()
        if dirty:
            print(f"{checkout}: workbooks/ changed:\n{dirty}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
