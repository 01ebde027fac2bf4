"""One training run per work directory, and a clear error when it cannot be written.

:class:`WorkdirLock` takes an exclusive ``fcntl.flock`` on ``WORKDIR/.lock``.
The kernel drops the lock when the holding process exits, however it dies
(kill -9 included), so a crashed run never leaves the directory stuck; the
file itself stays and is reused. ``flock`` works on local disks and on NFS
(Linux emulates it with POSIX locks there).
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import os
import socket
import sys

LOCK_NAME = ".lock"


class WorkdirError(ValueError):
    """The work directory cannot be created or written."""


class WorkdirBusyError(WorkdirError):
    """Another process is training in the work directory."""


def not_a_directory(path: str) -> str | None:
    """Why ``path``, which exists, cannot be a work directory (a file, a symlink loop, a dangling
    symlink); None if it is a directory or does not exist."""
    if not os.path.lexists(path) or os.path.isdir(path):
        return None
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as e:
            if e.errno == errno.ELOOP:
                return f"work directory {path} is a symbolic link loop ({path} -> {os.readlink(path)})"
            return f"work directory {path} is a symbolic link to {os.readlink(path)}, which does not exist"
    return f"work directory {path} exists but is not a directory"


class WorkdirLock:
    """Context manager holding the exclusive lock of ``workdir`` (created if missing).

    Entering raises :class:`WorkdirError` if the directory cannot be created or
    written, :class:`WorkdirBusyError` at once if another process holds the
    lock. It writes nothing into an existing lock file until :meth:`claim`, so
    a run that stops on a bad configuration leaves every file as it was.
    """

    def __init__(self, workdir: str):
        self.workdir = os.path.abspath(workdir)
        self.path = os.path.join(self.workdir, LOCK_NAME)
        self._fd: int | None = None

    def __enter__(self) -> "WorkdirLock":
        problem = not_a_directory(self.workdir)
        if problem:
            raise WorkdirError(f"{problem}; choose another --workdir")
        try:
            os.makedirs(self.workdir, exist_ok=True)
        except OSError as e:
            raise WorkdirError(f"cannot create work directory {self.workdir}: {e.strerror or e}") from e
        if not os.access(self.workdir, os.W_OK | os.X_OK):
            raise WorkdirError(f"work directory {self.workdir} is not writable; choose another --workdir "
                               "or fix its permissions")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise WorkdirError(f"work directory {self.workdir} is not writable (cannot open {self.path}: "
                               f"{e.strerror or e})") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise WorkdirBusyError(
                f"work directory {self.workdir} is in use by another training run ({holder}); wait for it to "
                "finish or stop it, or use another --workdir"
            ) from None
        self._fd = fd
        return self

    def claim(self) -> None:
        """Records this process (pid, host, start time, command) in the lock file for busy errors."""
        info = (f"pid {os.getpid()} on {socket.gethostname()}, started "
                f"{datetime.datetime.now().isoformat(timespec='seconds')}: {' '.join(sys.argv)[:300]}")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, info.encode(), 0)

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


__all__ = ["not_a_directory", "LOCK_NAME", "WorkdirBusyError", "WorkdirError", "WorkdirLock"]
