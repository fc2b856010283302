"""Stopping a child process politely: the signal, a bounded wait, then SIGKILL (benchmarks and tests share it)."""

from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    """Send ``sig`` (if the child still runs), wait up to ``timeout`` seconds, kill it if it is still there.

    Returns the exit status (negative: the signal that ended it).
    """
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
