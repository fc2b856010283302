"""Files that hold the user's data: private folders and files, replaced atomically.

The journal, the keys and exports hold what apps sent (emails, project ids)
or can sign certificates. They are created private from their first byte
(``os.open`` with the mode, never written and then ``chmod``-ed), written
to a temporary ``.part`` file beside the target and renamed into place, and
the folder is synced after the rename so the new name survives a power cut.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# A .part file no longer written for this long is left over even if its pid
# now names another process (pids are reused); a live writer touches it often.
STALE_AFTER = 3600.0
_POSIX = os.name != "nt"
_CREATE = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def restrict_to_owner(path: str | Path) -> None:
    """Take group and other permissions off ``path`` if it has any (a mode found loose on start).

    Left alone: Windows (no POSIX modes), a missing path, a shared sticky
    folder (``/tmp``) and anything another user owns.
    """
    if not _POSIX:
        return
    try:
        info = os.stat(path)
    except OSError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077 or info.st_mode & stat.S_ISVTX or info.st_uid != os.geteuid():
        return
    try:
        os.chmod(path, mode & ~0o077)
        log.info("%s was open to other users (mode %o); made it %o", path, mode, mode & ~0o077)
    except OSError as exc:
        log.warning("%s is open to other users (mode %o) and could not be changed: %s", path, mode, exc)


def make_private_dir(path: str | Path) -> Path:
    """Create the folder ``path`` 0700, or tighten it to owner-only if found looser.

    Missing parents are made 0700 too: they were made only to hold this one.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "a file is in the way", str(folder))
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for each in reversed(missing):
        each.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    restrict_to_owner(folder)
    return folder


def create_private_file(path: str | Path) -> bool:
    """Create ``path`` empty and 0600 if it does not exist (True when created); an existing one is tightened."""
    try:
        os.close(os.open(path, _CREATE, PRIVATE_FILE))
        return True
    except FileExistsError:
        if os.path.isfile(path):
            restrict_to_owner(path)
        return False


def part_name(target: Path) -> Path:
    """A fresh temporary name beside ``target``: ``.NAME.PID.TOKEN.part`` (see :func:`sweep_parts`)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")


def _writer_gone(pid: int) -> bool:
    if not _POSIX:
        return False  # os.kill on Windows would end the process: go by age alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's)
    return False


def sweep_parts(target: Path, *, now: float | None = None) -> list[Path]:
    """Remove ``.part`` files left beside ``target`` by a writer that was killed; return them.

    Only this target's own names (``.NAME.PID.TOKEN.part``: another target's
    never match) whose writer pid is gone, or that nobody wrote for
    :data:`STALE_AFTER` seconds. This process's own are left to it.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]{{8}}\.part")
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if not match:
            continue
        path = target.parent / name
        try:
            info = path.lstat()
        except OSError:
            continue
        pid = int(match.group(1))
        old = now - info.st_mtime > STALE_AFTER
        if stat.S_ISREG(info.st_mode) and (old or (pid != os.getpid() and _writer_gone(pid))):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def sync_folder(folder: Path) -> None:
    """fsync ``folder`` so a rename in it is durable (POSIX; Windows has no folder handle for it)."""
    if not _POSIX:
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename itself has happened
    finally:
        os.close(fd)


@contextmanager
def replacing(target: Path, *, mode: int = PRIVATE_FILE) -> Iterator[BinaryIO]:
    """Write ``target`` all or nothing through a binary handle.

    The handle is a new 0600 ``.part`` file beside ``target``; on success it
    is synced, given ``mode`` and renamed over ``target``, and the folder is
    synced. On any exception (KeyboardInterrupt too) the ``.part`` file is
    removed. Stale ``.part`` files of ``target`` are swept first. Raises
    ``OSError`` as the file system does.
    """
    sweep_parts(target)
    while True:
        temp = part_name(target)
        try:
            fd = os.open(temp, _CREATE, PRIVATE_FILE)
            break
        except FileExistsError:  # pragma: no cover - a 32-bit token collided
            continue
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            if mode != PRIVATE_FILE:
                os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    sync_folder(target.parent)


def write_atomically(target: Path, data: bytes, *, mode: int = PRIVATE_FILE) -> None:
    """Replace ``target`` with ``data`` (see :func:`replacing`); 0600 unless ``mode`` says otherwise."""
    with replacing(target, mode=mode) as handle:
        handle.write(data)
