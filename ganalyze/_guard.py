"""Checks on the files ganalyze is handed, before anything reads them.

Only regular files are opened: a FIFO, a character device (``/dev/zero``, ``/dev/urandom``), a
socket, or a symlink to one would hang a read or feed it without end. Sizes that a header
declares are checked against what the machine can hold before anything is allocated.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ganalyze.errors import InputError


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def regular_file(path: str | os.PathLike[str], what: str = "file") -> Path:
    """``path`` if it is (or links to) a regular file, else an InputError that says what it is.

    Symlink loops, dangling links, devices, FIFOs and sockets are refused without opening them.
    """
    path = Path(path).expanduser()
    try:
        st = os.stat(path)  # follows links; a loop raises ELOOP
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist.") from None
    except OSError as exc:
        raise InputError(
            f"{what} {path} cannot be opened ({exc.strerror}); expected a regular file."
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(
            f"{what} {path} is {_kind(st.st_mode)}; expected a regular file. ganalyze reads "
            "only regular files (never devices, pipes or sockets)."
        )
    return path


def available_memory() -> int:
    """Bytes of memory available to this process now: MemAvailable (else physical memory),
    capped by an address-space limit (``ulimit -v``) less what the process already maps."""
    free = _system_available()
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            free = min(free, max(soft - _mapped(), 0))
    except (ImportError, OSError, ValueError):  # pragma: no cover - non-POSIX
        pass
    return free


def _mapped() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _system_available() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def check_allocation(nbytes: int, what: str, fix: str) -> None:
    """Refuse to allocate more than half the available memory, with the estimate and a fix."""
    limit = available_memory() // 2
    if nbytes > limit:
        raise InputError(
            f"{what} would need about {_gb(nbytes)} of memory; this machine has "
            f"{_gb(limit * 2)} available (ganalyze uses at most half). {fix}"
        )


def _gb(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GB" if nbytes >= 2**28 else f"{nbytes / 2**20:.0f} MB"
