"""Atomic writes: an interrupted run never leaves a truncated file where a good one was."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

# tempfile's random part: 8 characters of [a-z0-9_] (secrets.token_hex(4) fits it too).
_TEMP_TAIL = r"\.[a-z0-9_]{8}\.tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; honour the umask
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temps(directory: str | os.PathLike[str], names: str, dirs: bool = False) -> int:
    """Remove what killed saves left in ``directory``: ``.<name>.<random>.tmp`` entries.

    ``names`` is a regular expression that the whole target name must match (the files, or
    with ``dirs=True`` the folders, that ganalyze writes there), so that nothing else is touched.
    Returns how many were removed.
    """
    pattern = re.compile(rf"\.(?:{names}){_TEMP_TAIL}")
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    removed = 0
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
            elif dirs and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                continue
        except OSError as exc:
            logger.warning("could not remove %s (%s)", entry.path, exc.strerror)
            continue
        removed += 1
    return removed


def _make_parents(folder: Path) -> list[Path]:
    """``mkdir -p`` that returns the folders it created, deepest first."""
    created = []
    while not folder.exists() and folder.parent != folder:
        created.append(folder)
        folder = folder.parent
    for d in reversed(created):
        d.mkdir(exist_ok=True)
    return created


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike[str], replaceable: Callable[[Path], bool], what: str = "folder"
) -> Iterator[Path]:
    """Yield a new temporary sibling folder of ``path``; on success swap it in whole for ``path``.

    The previous ``path`` is renamed away, the new one renamed in, then the old one deleted: an
    interrupted swap leaves the old or the new folder (or, between the renames, hidden siblings
    that the next call removes), never a mix of both. A non-empty ``path`` is replaced only
    when ``replaceable(path)`` says it is one of ours; otherwise nothing is written and an
    :class:`~ganalyze.errors.InputError` is raised. Parent folders created here are removed again
    when the body fails.
    """
    from ganalyze.errors import InputError

    path = Path(os.path.abspath(Path(path).expanduser()))
    if path.is_symlink():
        path = path.resolve()

    def check() -> bool:
        """True when ``path`` exists (as a folder we may replace)."""
        if not path.exists():
            return False
        if not path.is_dir():
            raise InputError(f"{path} exists and is not a folder; choose another {what} folder.")
        if any(path.iterdir()) and not replaceable(path):
            raise InputError(
                f"{path} is not empty and is not a {what} written by ganalyze (or holds other "
                "files beside one); refusing to replace it. Choose a new or empty folder, or "
                f"move those files out of {path} yourself."
            )
        return True

    check()
    created = _make_parents(path.parent)
    name = re.escape(path.name)
    removed = remove_stale_temps(path.parent, name, dirs=True)
    if removed:
        logger.info("removed %d leftover temporary folder(s) of %s", removed, path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; honour the umask
        old = None
        try:
            if check():
                old = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
                os.rename(path, old)
            os.rename(tmp, path)
        except BaseException:
            if old is not None and old.exists() and not path.exists():
                os.rename(old, path)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def save_torch(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write UTF-8 text to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def save_figure(fig: Any, stem: str | os.PathLike[str], dpi: int = 150) -> list[Path]:
    """Save a matplotlib figure as ``stem.png`` and ``stem.pdf`` (vector, TrueType fonts:
    venues reject Type 3), atomically."""
    from ganalyze.report.figures import render

    files = render(fig, dpi=dpi)
    paths = []
    for ext in ("png", "pdf"):
        target = Path(f"{stem}.{ext}")
        with atomic_path(target) as tmp:
            tmp.write_bytes(getattr(files, ext))
        paths.append(target)
    return paths


def copy_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Copy ``src`` onto ``dst`` atomically."""
    import shutil

    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)
