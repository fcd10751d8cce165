"""Run the CLI in a child process and measure its wall time and its own peak RSS (benchmarks)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

# The child reports its own peak RSS at exit: RUSAGE_CHILDREN would give the maximum over
# every earlier child too.
_CHILD = (
    "import atexit, os, resource, runpy, sys\n"
    "pid = os.getpid()\n"
    "def report():\n"
    "    if os.getpid() == pid:  # not in forked workers, which inherit atexit handlers\n"
    "        r = resource.getrusage\n"
    "        sys.stderr.write('MAXRSS %d %d\\n' % (r(resource.RUSAGE_SELF).ru_maxrss,\n"
    "                         r(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "atexit.register(report)\n"
    "sys.argv = ['dermasynth', *sys.argv[1:]]\n"
    "runpy.run_module('dermasynth_builder', run_name='__main__')\n"
)


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Run ``dermasynth ARGS``; return (wall seconds, peak RSS bytes of the process or of its
    largest worker, whichever is larger). Raises on failure."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    wall = time.perf_counter() - started
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode not in (0, 1) or "Traceback (most recent call last)" in stderr:
        raise RuntimeError(
            f"dermasynth {' '.join(args)} failed ({proc.returncode}): {stderr[-2000:]}"
        )
    own, workers = stderr.rsplit("MAXRSS ", 1)[1].split()[:2]
    peak = max(int(own), int(workers)) * 1024  # KiB on Linux
    return wall, peak
