"""Atomic file writers: a reader never sees a half-written output.

Every writer puts the content into a temporary file in the destination folder, flushes it to disk
and then moves it over the destination with :func:`os.replace` (atomic on POSIX and Windows when
both paths are on the same file system, which a sibling temporary file guarantees). When writing
fails, the temporary file is removed and the destination is left as it was.

The final file gets the permissions an ordinary ``open(path, "w")`` would give it (``0o666`` less
the process umask), or keeps the permissions of the file it replaces.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "atomic_write_path",
    "write_parquet_atomic",
    "write_csv_atomic",
    "write_text_atomic",
    "write_bytes_atomic",
    "write_files_atomic",
    "TEMP_SUFFIX",
]

TEMP_SUFFIX = ".tmp"
"""Suffix of the temporary files (named ``.<name>.<random>.tmp``) while a write is in progress."""


def _current_umask() -> int:
    """Return the process umask without changing it for longer than two system calls."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_mode(path: Path) -> int:
    """The permission bits the destination should end up with."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_current_umask()


def _fsync_file(path: Path) -> None:
    """Flush a file's (or a folder's) content to disk (best effort where the platform cannot
    open it read-only)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _make_temp_path(path: Path) -> Path:
    """Create an empty temporary file next to ``path`` and return its name."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    return Path(name)


@contextmanager
def atomic_write_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path`` atomically.

    The parent folder is created when missing. If the body raises, the temporary file is removed,
    ``path`` is untouched and the exception propagates.

    Example:
        >>> with atomic_write_path("out/model.joblib") as tmp:  # doctest: +SKIP
        ...     joblib.dump(model, tmp)

    Args:
        path: The destination file.

    Yields:
        A path in the same folder as ``path`` that the caller writes the full content to.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    mode = _final_mode(dest)
    tmp = _make_temp_path(dest)
    try:
        yield tmp
        os.chmod(tmp, mode)
        _fsync_file(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_file(dest.parent)  # the rename itself survives a power cut too


def _write_with(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    with atomic_write_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> Path:
    """Write a DataFrame to a Parquet file atomically.

    Args:
        df: The frame to write.
        path: The destination ``.parquet`` file.
        index: Also store the index (off by default: canonical frames use a RangeIndex).

    Returns:
        The destination path.
    """
    return _write_with(path, lambda tmp: df.to_parquet(tmp, index=index))


def write_csv_atomic(
    df: pd.DataFrame, path: str | os.PathLike, index: bool = False, **to_csv_kwargs: Any
) -> Path:
    """Write a DataFrame to a UTF-8 CSV file atomically.

    Args:
        df: The frame to write.
        path: The destination ``.csv`` file.
        index: Also write the index (off by default).
        **to_csv_kwargs: Passed on to :meth:`pandas.DataFrame.to_csv`.

    Returns:
        The destination path.
    """
    to_csv_kwargs.setdefault("encoding", "utf-8")
    return _write_with(path, lambda tmp: df.to_csv(tmp, index=index, **to_csv_kwargs))


def write_text_atomic(text: str, path: str | os.PathLike, encoding: str = "utf-8") -> Path:
    """Write a string to a text file atomically.

    Args:
        text: The full content.
        path: The destination file.
        encoding: Text encoding (UTF-8 unless told otherwise).

    Returns:
        The destination path.
    """
    return _write_with(path, lambda tmp: tmp.write_text(text, encoding=encoding))


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> Path:
    """Write bytes to a file atomically.

    Args:
        data: The full content.
        path: The destination file.

    Returns:
        The destination path.
    """
    return _write_with(path, lambda tmp: tmp.write_bytes(data))


def write_files_atomic(writers: Mapping[str | os.PathLike, Callable[[Path], Any]]) -> list[Path]:
    """Write several files so that either all of them are replaced or none is.

    Each writer is called with a temporary path next to its destination and must write the full
    content there. Only when every writer has succeeded are the files moved into place (a quick
    rename each). If a writer fails, all temporary files are removed, no destination is touched,
    and a destination folder that this call created is removed again.

    Args:
        writers: Destination path -> function that writes the content to the path it is given.

    Returns:
        The destination paths, in the order given.
    """
    targets = [(Path(dest), write) for dest, write in writers.items()]
    created: list[Path] = []
    for dest, _ in targets:
        missing = []
        parent = dest.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for folder in reversed(missing):
            folder.mkdir(exist_ok=True)
            created.append(folder)
    staged: list[tuple[Path, Path, int]] = []
    try:
        for dest, write in targets:
            mode = _final_mode(dest)
            tmp = _make_temp_path(dest)
            staged.append((tmp, dest, mode))
            write(tmp)
            os.chmod(tmp, mode)
            _fsync_file(tmp)
    except BaseException:
        for tmp, _, _ in staged:
            tmp.unlink(missing_ok=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    for tmp, dest, _ in staged:
        os.replace(tmp, dest)
    return [dest for dest, _ in targets]
