"""Child processes of the benchmarks: stopping one politely, and the CPU time of one and its children.

``stop_process`` is shared with the tests; ``stop_tree`` also ends what a server left running.
``process_tree`` and ``tree_usage`` read Linux's ``/proc`` (no dependency): a server with
worker processes (``serve --workers N``) is measured over the parent and every process below it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

_PROC = Path("/proc")


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


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (which may hold spaces and parentheses):
    index 0 is the state, 1 the parent's pid, 11-14 utime, stime, cutime, cstime, 19 the start time."""
    return (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (children, their children...), sorted; ``[pid]`` off Linux."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return [pid]
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry))[1])
        except (OSError, ValueError, IndexError):  # a process that ended meanwhile
            continue
        children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return sorted(tree)


def stop_tree(proc: subprocess.Popen, timeout: float = 20) -> None:
    """:func:`stop_process` on ``proc``, then SIGKILL to any process that was below it and is still
    there (a worker its parent did not stop). Each is recognised by its start time, so a pid the
    system has given to another process since is left alone."""
    below = []
    for pid in process_tree(proc.pid)[1:]:
        try:
            below.append((pid, _stat_fields(pid)[19]))
        except (OSError, IndexError):
            continue
    stop_process(proc, timeout=timeout)
    for pid, started in below:
        try:
            if _stat_fields(pid)[19] == started:
                os.kill(pid, signal.SIGKILL)
        except (OSError, IndexError):  # gone already, as it should be
            continue


def _switches(pid: int) -> int:
    """Context switches (voluntary and not) of every thread of ``pid`` so far."""
    total = 0
    try:
        tasks = os.listdir(_PROC / str(pid) / "task")
    except OSError:
        return 0
    for task in tasks:
        try:
            for line in (_PROC / str(pid) / "task" / task / "status").read_text().splitlines():
                if "ctxt_switches:" in line:
                    total += int(line.split()[1])
        except OSError:  # a thread that ended meanwhile
            continue
    return total


def tree_usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, context switches) so far of ``pid`` and every process below it; None off Linux.

    Each process counts its own user + system time and that of its children already waited for
    (cutime, cstime), so a worker that ends between two readings is still counted, once: its
    time moves from its own line to its parent's. CPU per request is steadier than requests
    per second on a shared machine: a neighbour's load slows a run down but adds little CPU
    time to it.
    """
    try:
        _stat_fields(pid)
    except (OSError, ValueError, IndexError):
        return None
    seconds, switches = 0.0, 0
    for member in process_tree(pid):
        try:
            fields = _stat_fields(member)
            ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        except (OSError, ValueError, IndexError):
            continue
        seconds += ticks / os.sysconf("SC_CLK_TCK")
        switches += _switches(member)
    return seconds, switches
