"""The progress line of `xlgen build` and `xlgen verify`, on a terminal.

Work is told in phases (build: planning, preparing, linting, compiling, computing,
writing, compressing; verify: reading, compiling, computing, checking, comparing),
each called as progress(done, total, phase). A phase with counts shows a bar of its own
and its counts; a phase without (total None: reading a file, writing one) shows what it
is doing and for how long, never a bar. An estimate of the time left appears only in
the phases counted in formulas or cells (not sheets, which differ too much in size),
once the phase has run for a second and done a twentieth of its work, and it is that
phase's own; so the line never shows a full bar while another phase has yet to run,
nor an estimate made from nothing.
"""

from __future__ import annotations

import sys
import threading
import time

BAR_WIDTH = 24
REDRAW_SECONDS = 0.25
ETA_AFTER_SECONDS = 1.0
ETA_AFTER_FRACTION = 0.05
# phases counted in many like units; sheets differ too much in size to extrapolate from
ESTIMATED = ("compiling", "computing")
UNITS = {"planning": "sheets", "preparing": "sheets", "compiling": "formulas", "computing": "cells",
         "checking": "sheets", "writing": "sheets", "building": "workbooks"}


def seconds(value: float) -> str:
    if value < 1:
        return "under a second"
    value = int(round(value))
    return f"{value} s" if value < 60 else f"{value // 60} min {value % 60:02d} s"


class Progress:
    """progress(done, total, phase): one line, redrawn in place (and every quarter second
    by a small thread, so elapsed time moves while a phase has nothing to count)."""

    def __init__(self, label: str, stream=None, clock=time.monotonic):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.phase = None
        self.done = 0
        self.total = None
        self.started = self.phase_started = clock()
        self.width = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ticker = None

    def __call__(self, done, total=None, phase: str = "computing") -> None:
        with self.lock:
            if phase != self.phase:
                self.phase, self.phase_started = phase, self.clock()
            self.done, self.total = done, total
            self._draw()

    def line(self) -> str:
        now = self.clock()
        parts = [f"{self.label}: {self.phase or 'starting'}"]
        in_phase = now - self.phase_started
        if self.total:
            fraction = min(max(self.done / self.total, 0.0), 1.0)
            filled = int(fraction * BAR_WIDTH)
            unit = UNITS.get(self.phase, "")
            parts.append(f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {int(fraction * 100):3d}% "
                         f"{self.done:,}/{self.total:,} {unit}".rstrip())
            if self.phase in ESTIMATED and in_phase >= ETA_AFTER_SECONDS and ETA_AFTER_FRACTION <= fraction < 1:
                left = in_phase / fraction * (1 - fraction)
                parts.append(f"{self.phase} done in {'about ' if left >= 1 else ''}{seconds(left)}")
        parts.append(f"{seconds(now - self.started)} so far" if now - self.started >= 1 else "")
        return "  ".join(part for part in parts if part)

    def print_above(self, echo) -> None:
        """Run `echo` (which prints a line) with the progress line cleared, then redraw it."""
        with self.lock:
            self._clear()
            echo()
            if self.phase is not None:
                self._draw()

    def _clear(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0

    def _draw(self) -> None:
        text = self.line()
        padding = " " * max(0, self.width - len(text))
        self.width = len(text)
        self.stream.write("\r" + text + padding)
        self.stream.flush()

    def _tick(self) -> None:
        while not self.stop.wait(REDRAW_SECONDS):
            with self.lock:
                if self.phase is not None:
                    self._draw()

    def __enter__(self):
        self.ticker = threading.Thread(target=self._tick, name="xlgen-progress", daemon=True)
        self.ticker.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.ticker is not None:
            self.ticker.join()
        with self.lock:   # leave the terminal line clean for the result
            self._clear()
        return False


def phase(progress, name: str) -> None:
    """Start a phase without counts, if anyone is listening."""
    if progress is not None:
        progress(0, None, name)
