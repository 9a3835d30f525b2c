"""Randomly damaged workbooks through `xlgen verify`: a tally of what the user sees.

    python benchmarks/fuzz.py                      # 5,000 cases, 2 at a time
    python benchmarks/fuzz.py --cases 300 --seed 7 --jobs 1
    python benchmarks/fuzz.py --replay 1234        # one case again, its file kept
    python benchmarks/fuzz.py --replay 1234 --book two-neuron.xlsx --kind formula

Workbooks: small builds of each template (--set epochs=1), the course's files in
../shared/fixtures and workbooks/*.xlsx, each chosen with a weight inversely
proportional to its verify time. Those times are measured, so which workbook a case
index draws can differ between runs on a loaded machine: a broken case's line names its
workbook and kind, and `--replay N --book NAME --kind KIND` rebuilds exactly that case
(the damage depends only on the seed, the index, the workbook and the kind). Damage (tests/fuzz/damage.py): bytes of the zip; one
XML member flipped, truncated, duplicated, emptied or deleted; elements inserted into a
sheet; formula text with tokens inserted. Each case runs `xlgen verify` in-process in a
forked child (imports done once in the parent, so thousands of cases take minutes),
which gives each case its own CPU and wall time, peak memory (the child's maxrss,
imports included) and a kill; one case in --sample also runs as a real process
(`python -m xlgen.cli verify`) and must end the same way.

Promised for every case: it ends within 30 s (of CPU: the machine is shared, so wall
time is reported but a child is killed only after 120 s) with exit 0, 1 or 2; exit 2 prints
exactly one line and no traceback; peak memory under 2 GiB. Exit status 1 if any case
breaks a promise.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzz import damage as damage_module  # noqa: E402
from tests.fuzz.harness import corpus, judge, limit_memory, real_process, run_verify  # noqa: E402

TIME_LIMIT = 30.0  # seconds of CPU a case may take (the machine is shared: wall time is noisy)
WALL_KILL = 120.0  # a child still running after this much wall time is killed as a hang
MEMORY_LIMIT = 2 << 30
KIND_WEIGHTS = {"zip": 0.15, "member": 0.25, "tag": 0.25, "formula": 0.35}


def warm_up() -> None:
    """Import what verify may import lazily, once, so forked children share it."""
    import formulas.functions as functions
    import xlgen.cli  # noqa: F401
    import xlgen.verify  # noqa: F401
    for sub in ("math", "logic", "info", "text", "look", "date", "financial", "eng", "google", "stat", "comp"):
        __import__(f"formulas.functions.{sub}")
    assert functions


def plan_cases(books, costs, count: int, seed: int) -> list[tuple[int, Path, str]]:
    rng = random.Random(seed)
    weights = [1.0 / (cost + 0.5) for cost in costs]
    kinds, kind_weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
    return [(i, rng.choices(books, weights)[0], rng.choices(kinds, kind_weights)[0]) for i in range(count)]


def make_case(book: Path, kind: str, seed: int, index: int, folder: Path) -> Path:
    rng = random.Random(f"{seed}:{index}")
    damaged = damage_module.damage(book.read_bytes(), kind, rng)
    path = folder / f"case{index}-{kind}-{book.stem}.xlsx"
    path.write_bytes(damaged)
    return path


def child(book: Path, kind: str, seed: int, index: int, folder: Path, result_path: Path) -> None:
    """In the forked child: damage, verify, write the outcome; never returns."""
    status = 3
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        limit_memory(4 * MEMORY_LIMIT)  # far above the promise: a runaway fails, the machine lives
        path = make_case(book, kind, seed, index, folder)
        started = time.perf_counter()
        code, out, err, crash = run_verify(path)
        seconds = time.perf_counter() - started
        problem = judge(code, out, err, crash)
        result = {"code": code, "seconds": seconds, "problem": problem, "err": err.strip()[:400],
                  "crash": crash, "path": str(path)}
        result_path.write_text(json.dumps(result))
        if problem is None:
            path.unlink()
        status = 0
    finally:
        os._exit(status)


def run(cases, seed: int, jobs: int, folder: Path, sample: int, verbose: bool, stop_at: float | None):
    running = {}  # pid -> (case, started, result path)
    results = []
    queue = list(cases)
    while queue or running:
        if stop_at is not None and time.monotonic() > stop_at and queue:
            print(f"  time budget spent: {len(queue):,} cases not started", flush=True)
            queue.clear()
        while queue and len(running) < jobs:
            index, book, kind = queue.pop(0)
            result_path = folder / f"result{index}.json"
            pid = os.fork()
            if pid == 0:
                child(book, kind, seed, index, folder, result_path)
            running[pid] = ((index, book, kind), time.monotonic(), result_path)
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for other, (case, started, _) in running.items():
                if now - started > WALL_KILL:
                    os.kill(other, signal.SIGKILL)
            time.sleep(0.002)
            continue
        case, started, result_path = running.pop(pid)
        wall = time.monotonic() - started
        index, book, kind = case
        try:
            result = json.loads(result_path.read_text())
            result_path.unlink()
        except (OSError, ValueError):
            killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            result = {"code": None, "seconds": wall, "err": "",
                      "problem": f"hang: killed after {WALL_KILL:.0f} s" if killed else f"child died ({status})"}
        cpu = usage.ru_utime + usage.ru_stime
        result.update(index=index, book=book.name, kind=kind, wall=wall, cpu=cpu, memory=usage.ru_maxrss * 1024)
        if result["problem"] is None and result["memory"] > MEMORY_LIMIT:
            result["problem"] = f"peak memory {result['memory'] >> 20} MiB"
        if result["problem"] is None and cpu > TIME_LIMIT:
            result["problem"] = f"took {cpu:.1f} s of CPU"
        if sample and index % sample == 0 and result["problem"] is None:
            result["process"] = check_real_process(book, kind, seed, index, folder, result)
            if result["process"]:
                result["problem"] = result["process"]
        results.append(result)
        if verbose or result["problem"]:
            print(f"case {index:5} {kind:8} {book.name:28} exit {result['code']} {cpu:6.2f} s "
                  f"{result['memory'] >> 20:5} MiB  {result['problem'] or result['err'][:90]}", flush=True)
        elif len(results) % 250 == 0:
            print(f"  {len(results):,} cases done", flush=True)
    return results


def check_real_process(book, kind, seed, index, folder, result) -> str | None:
    """The same case as a real `python -m xlgen.cli verify`: same exit code, same stderr."""
    path = make_case(book, kind, seed, index, folder)
    try:
        code, out, err = real_process(path, timeout=TIME_LIMIT + 30)
    except Exception as error:  # a timeout
        return f"real process: {error}"
    finally:
        path.unlink(missing_ok=True)
    problem = judge(code, out, err, None)
    if problem:
        return "real process: " + problem
    if code != result["code"] or err.strip()[:400] != result["err"]:
        return f"real process: exit {code} ({err.strip()[:200]!r}) where in-process gave exit {result['code']}"
    result["process_ok"] = True
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sample", type=int, default=50, help="every Nth case also as a real process (0: none)")
    parser.add_argument("--replay", type=int, help="run one case index again and keep its file")
    parser.add_argument("--book", help="with --replay: the workbook the case damaged (its file name)")
    parser.add_argument("--kind", choices=list(KIND_WEIGHTS), help="with --replay: the kind of damage")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--minutes", type=float, help="start no case after this many minutes (the tally "
                        "then covers the cases run)")
    args = parser.parse_args()

    warm_up()
    work = Path(tempfile.mkdtemp(prefix="xlgen-fuzz-"))
    books = corpus(work)
    costs = []
    for book in books:  # each undamaged book once: its cost, and the promise holds for it too
        started = time.perf_counter()
        code, out, err, crash = run_verify(book)
        costs.append(time.perf_counter() - started)
        assert judge(code, out, err, crash) is None, (book, err, crash)
    cases = plan_cases(books, costs, args.cases, args.seed)
    if args.replay is not None:
        index, book, kind = cases[args.replay]
        if args.book:
            book = next((b for b in books if b.name == args.book), None)
            if book is None:
                parser.error(f"--book {args.book}: not one of {', '.join(b.name for b in books)}")
        kind = args.kind or kind
        path = make_case(book, kind, args.seed, index, work)
        code, out, err, crash = run_verify(path)
        print(f"{path}\nexit {code}\n{out}{err}{crash or ''}")
        return 0
    print(f"{len(cases):,} cases over {len(books)} workbooks (seed {args.seed}, {args.jobs} at a time); "
          f"files of failing cases stay in {work}", flush=True)
    started = time.monotonic()
    stop_at = started + 60 * args.minutes if args.minutes else None
    results = run(cases, args.seed, args.jobs, work, args.sample, args.verbose, stop_at)
    elapsed = time.monotonic() - started
    return report(results, books, elapsed)


def report(results, books, elapsed: float) -> int:
    problems = [r for r in results if r["problem"]]
    print(f"\n{len(results):,} cases in {elapsed / 60:.1f} min")
    print(f"{'kind':10} {'cases':>6} {'exit 0':>7} {'exit 1':>7} {'exit 2':>7} {'broken':>7}")
    for kind in list(KIND_WEIGHTS) + ["all"]:
        rows = [r for r in results if kind in ("all", r["kind"])]
        codes = collections.Counter(r["code"] for r in rows if not r["problem"])
        print(f"{kind:10} {len(rows):6,} {codes[0]:7,} {codes[1]:7,} {codes[2]:7,} "
              f"{sum(1 for r in rows if r['problem']):7,}")
    by_book = collections.Counter(r["book"] for r in results)
    print("workbooks: " + ", ".join(f"{name} {count:,}" for name, count in by_book.most_common()))
    kinds_of_problem = collections.Counter(p["problem"].split(":")[0] for p in problems)
    print(f"tracebacks {kinds_of_problem['traceback'] + kinds_of_problem['traceback printed']}, "
          f"hangs {kinds_of_problem['hang']}, multi-line or unclear errors "
          f"{sum(1 for p in problems if p['problem'].startswith(('exit 2 with', 'exit 1 with', 'exit 0 with')))}, "
          f"other {len(problems) - sum(kinds_of_problem[k] for k in ('traceback', 'traceback printed', 'hang'))}")
    slowest = max(results, key=lambda r: r["cpu"])
    slowest_wall = max(results, key=lambda r: r["wall"])
    biggest = max(results, key=lambda r: r["memory"])
    print(f"worst time {slowest['cpu']:.2f} s of CPU (case {slowest['index']}, {slowest['kind']}, {slowest['book']}), "
          f"{slowest_wall['wall']:.2f} s wall on this shared machine (case {slowest_wall['index']}); "
          f"worst peak memory {biggest['memory'] / (1 << 20):.0f} MiB (case {biggest['index']}, {biggest['book']})")
    print(f"real processes: {sum(1 for r in results if r.get('process_ok'))} sampled cases gave the same exit "
          "code and message")
    messages = collections.Counter(re.sub(r"^xlgen: error: (\S*case\d+-\S+\.xlsx: )?", "", r["err"])[:50]
                                   for r in results if r["code"] == 2)
    print("most common refusals: " + "; ".join(f"{count}x {text}" for text, count in messages.most_common(6)))
    for p in problems[:20]:
        print(f"  case {p['index']} ({p['kind']}, {p['book']}): {p['problem']}  "
              f"[--replay {p['index']} --book {p['book']} --kind {p['kind']}]")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
