"""Forked helper processes (the reader's expat check, verify's lint survey): ending one."""

from __future__ import annotations

import os
import signal


def end_child(pid: int | None, descriptor: int | None) -> None:
    """Kill and reap child `pid` if still running (its answer is no longer wanted, or has
    been read), and close `descriptor`, this process's end of what it wrote into."""
    if pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    if descriptor is not None:
        os.close(descriptor)
