"""The progress line: phases with honest counts, no estimate made from nothing, no full
bar while work remains."""

from __future__ import annotations

import io

from xlgen.progress import Progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def progress_line(steps):
    """Feed (seconds later, done, total, phase) steps; the line after each."""
    clock = Clock()
    progress = Progress("verify", io.StringIO(), clock=clock)
    lines = []
    for later, done, total, phase in steps:
        clock.now += later
        progress(done, total, phase)
        lines.append(progress.line())
    return lines


def test_a_phase_without_counts_shows_no_bar_and_no_estimate():
    line, later = progress_line([(0, 0, None, "reading"), (12, 0, None, "reading")])
    assert line == "verify: reading"
    assert "%" not in later and "[" not in later and "done in" not in later and "12 s so far" in later


def test_no_estimate_until_a_second_has_passed_and_a_twentieth_is_done():
    lines = progress_line([(0, 0, 1000, "computing"), (0.5, 400, 1000, "computing"),
                           (2.0, 30, 1000, "compiling"), (0.5, 40, 1000, "compiling"),
                           (1.0, 100, 1000, "compiling"), (1.0, 1000, 1000, "compiling")])
    assert "done in" not in lines[0] and "done in" not in lines[1]      # half a second in
    assert "done in" not in lines[2] and "done in" not in lines[3]      # a new phase starts its own clock
    assert "compiling done in about 14 s" in lines[4]                  # 1.5 s for 10%: 13.5 s to go
    assert "done in" not in lines[5]                                   # nothing left


def test_no_estimate_from_sheet_counts():
    lines = progress_line([(0, 0, 7, "writing"), (5, 3, 7, "writing")])
    assert "3/7 sheets" in lines[1] and "done in" not in lines[1]


def test_the_bar_is_full_only_when_its_phase_is_done():
    lines = progress_line([(0, 999, 1000, "computing"), (0, 1000, 1000, "computing"), (0, 0, None, "writing")])
    assert "99%" in lines[0] and "#" * 24 not in lines[0]
    assert "100% 1,000/1,000 cells" in lines[1]
    assert lines[2] == "verify: writing"


def record(calls):
    return lambda done, total=None, phase="computing": calls.append((phase, done, total))


def phases(calls) -> list[str]:
    out = []
    for phase, _, _ in calls:
        if not out or out[-1] != phase:
            out.append(phase)
    return out


def test_build_and_verify_report_every_phase_in_order(tmp_path):
    from xlgen.build import build
    from xlgen.verify import verify_file
    path = tmp_path / "small.xlsx"
    calls = []
    build("graddesc", path, ["epochs=2"], progress=record(calls))
    assert phases(calls) == ["planning", "preparing", "linting", "compiling", "computing", "writing", "compressing"]
    calls_verify = []
    assert verify_file(path, progress=record(calls_verify)).ok
    assert phases(calls_verify) == ["reading", "compiling", "computing", "checking", "comparing"]
    for phase in ("compiling", "computing", "checking"):
        counts = [(done, total) for name, done, total in calls_verify if name == phase]
        assert all(0 <= done <= total for done, total in counts)
        assert all(a[0] <= b[0] for a, b in zip(counts, counts[1:]))
        assert len({total for _, total in counts}) == 1      # the total is known when the phase starts
    computing = [(done, total) for name, done, total in calls_verify if name == "computing"]
    assert computing[-1][0] == computing[-1][1]


def test_the_terminal_line_is_cleared_for_the_result():
    stream = io.StringIO()
    with Progress("build", stream) as progress:
        progress(5, 10, "computing")
    assert stream.getvalue().endswith("\r")
    last = stream.getvalue().rsplit("\r", 2)[-2]
    assert last.strip() == ""


def test_a_line_printed_above_the_progress_line_is_not_mixed_with_it():
    """build --all prints each workbook's result while its progress line shows."""
    stream = io.StringIO()
    progress = Progress("build --all", stream, clock=Clock())
    progress(2, 7, "building")
    progress.print_above(lambda: stream.write("OK   workbooks/graddesc.xlsx\n"))
    drawn, blank, printed, redrawn = stream.getvalue().split("\r")[1:]
    assert "2/7 workbooks" in drawn and blank.strip() == ""            # the line cleared first,
    assert printed == "OK   workbooks/graddesc.xlsx\n"                 # the result on a line of its own,
    assert redrawn == drawn                                            # the progress line drawn again below
