"""Atomic file output: a crash or kill never leaves a half-written artifact that looks complete.

Everything is written to a temporary sibling, flushed and fsynced, then renamed over the target
(`os.replace` is atomic on POSIX within a filesystem).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from asr_flywheel.errors import FlywheelError, InputError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def no_space(exc: OSError, path: str | os.PathLike) -> OSError:
    """A full disk named as such, with the file that did not fit (libraries report it in their own words)."""
    if exc.errno == errno.ENOSPC:
        folder = Path(path).parent
        while folder.name.startswith(".") and folder != folder.parent:  # a staging folder: name what the user chose
            folder = folder.parent
        return OSError(errno.ENOSPC, f"no space left on the device holding {folder}", str(path))
    return exc


#: Free space under which a tool's unreadable or truncated output is blamed on a full disk.
LOW_DISK_BYTES = 1 << 20


def full_disk(path: str | os.PathLike) -> OSError | None:
    """A full-disk error for `path` when its filesystem is (nearly) full, else None.

    External programs (synthesizers, sox) that run out of disk leave a truncated file and then report it in their
    own words ("RIFF header not found"); the user needs the real cause.
    """
    where = Path(path)
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return None
    return no_space(OSError(errno.ENOSPC, "no space"), path) if free < LOW_DISK_BYTES else None


def _stage(target: Path, mode: str, encoding: str | None):
    """A temp file next to `target` with the umask's permissions (mkstemp alone creates 0600)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)
    binary = "b" in mode
    return tmp, os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else "")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator:
    """Open a temp file next to `path`; on clean exit it replaces `path`, on error it is removed."""
    target = Path(path)
    tmp, handle = _stage(target, mode, encoding)
    try:
        with handle as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise no_space(exc, target) from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class FileSet:
    """Files that are only meaningful together (metrics.json, per_sample.jsonl, results.csv, ...): each is staged in
    full first, and they replace their targets only once every one was written, in the order staged (so stage the
    file readers treat as "done", metrics.json, last). A full disk midway leaves the previous set as it was."""

    def __init__(self) -> None:
        self._staged: list[tuple[str, Path]] = []

    def write_bytes(self, path: str | os.PathLike, data: bytes) -> Path:
        target = Path(path)
        tmp, handle = _stage(target, "wb", None)
        self._staged.append((tmp, target))
        try:
            with handle as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise no_space(exc, target) from exc
        return target

    def write_text(self, path: str | os.PathLike, text: str) -> Path:
        return self.write_bytes(path, text.encode("utf-8"))

    def write_json(self, path: str | os.PathLike, obj) -> Path:
        return self.write_bytes(path, dumps_json(obj))

    def write_jsonl(self, path: str | os.PathLike, rows: Iterable[dict]) -> Path:
        return self.write_bytes(path, jsonl_bytes(list(rows)))

    def commit(self) -> None:
        for tmp, target in self._staged:
            os.replace(tmp, target)
        for directory in {target.parent for _, target in self._staged}:
            _fsync_dir(directory)
        self._staged = []

    def discard(self) -> None:
        for tmp, _ in self._staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._staged = []


@contextlib.contextmanager
def file_set() -> Iterator[FileSet]:
    files = FileSet()
    try:
        yield files
        files.commit()
    finally:
        files.discard()


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_open(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def dumps_json(obj, *, indent: bool = True) -> bytes:
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    if indent:
        option |= orjson.OPT_INDENT_2
    return orjson.dumps(obj, option=option) + (b"\n" if indent else b"")


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_bytes(path, dumps_json(obj))


def jsonl_bytes(rows: list[dict]) -> bytes:
    """Serialise rows as JSON Lines.

    One orjson call over the whole list is ~5x faster than one call per row. The compact array it returns
    is `[{...},{...}]`: row boundaries are exactly the `},{` sequences, *if* no row contains `},{` itself.
    That holds iff the sequence occurs exactly len(rows) - 1 times, which is checked; otherwise rows are
    serialised one by one.
    """
    if not rows:
        return b""
    option = orjson.OPT_SERIALIZE_NUMPY
    if all(type(r) is dict for r in rows):
        blob = orjson.dumps(rows, option=option)
        if blob.count(b"},{") == len(rows) - 1:
            return blob[1:-1].replace(b"},{", b"}\n{") + b"\n"
    return b"".join(orjson.dumps(r, option=option | orjson.OPT_APPEND_NEWLINE) for r in rows)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    return write_bytes(path, jsonl_bytes(list(rows)))


class CorruptFileError(FlywheelError):
    """A record file the flywheel wrote earlier cannot be read back (truncated, edited by hand)."""

    exit_code = 2


def read_json(path: str | os.PathLike):
    try:
        return orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise CorruptFileError(
            f"{path} is not valid JSON ({exc}); it may have been truncated: restore it from a backup or move it "
            "aside (the flywheel never writes a partial file, so something else changed it)"
        ) from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    lines = Path(path).read_bytes().splitlines()
    try:
        return [orjson.loads(line) for line in lines if line.strip()]
    except orjson.JSONDecodeError:
        for number, line in enumerate(lines, 1):
            try:
                orjson.loads(line) if line.strip() else None
            except orjson.JSONDecodeError as exc:
                raise CorruptFileError(f"{path}, line {number}: not valid JSON ({exc})") from None
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temp name and rename it into place only when complete.

    An existing target is replaced only after the new one is fully written (used for HF model dirs and
    Triton model versions, where a half-copied directory would load as a broken model).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_problems(err: InputError, path: str | Path) -> Path:
    """An error's full problem list as JSON Lines (one problem per line), for lists too long for a terminal."""
    return write_jsonl(Path(path), [p.to_dict() for p in err.problems])
