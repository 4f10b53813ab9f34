"""Writing outputs safely: the one atomic-write helper, and the checks every output passes.

- Atomic: an output is written to a hidden temporary sibling and renamed onto its name, so a
  reader never sees half a file. The temporary file is created with mode `0o666 & ~umask`, like
  a plain `open()`, so outputs on a shared server are as readable as the user's umask allows.
- Temporaries are named `.<name>.<pid>.<8 hex>.tmp`; `remove_stale_temporaries` deletes those
  of processes that no longer run (a killed job) and never touches anything else.
- A full disk (or quota) raises `DiskFullError` with the partial file already removed, so a
  batch can stop with one line instead of failing every remaining file the same way.
- `check_finite` refuses NaN/inf model output before it is written (a 16-bit wav of NaN
  would silently become full-scale −1).
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import DiskFullError, ModelOutputError

__all__ = [
    "atomic_output",
    "atomic_path",
    "atomic_write",
    "check_finite",
    "disk_full_error",
    "is_disk_full",
    "publish",
    "remove_stale_temporaries",
    "umask",
    "write_json",
]

TMP_SUFFIX = ".tmp"
_TMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
# Names tempfile.mkstemp gave our temporaries before the pid was part of them; only for the
# kinds of files sonotok writes, so nobody else's hidden files can match.
_OLD_TMP_NAME = re.compile(
    r"^\..+\.(wav|flac|safetensors|npy|npz|json|jsonl|arrow|html|yaml)\.[a-z0-9_]{8}\.tmp$"
)
_DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e)
# How libraries that do not raise OSError report it (safetensors: "... (os error 28)").
_DISK_FULL_TEXT = ("no space left on device", "disk quota exceeded", "os error 28", "os error 122")
LOW_SPACE_BYTES = 1 << 20  # below this, a failed write is taken as the disk being full
_FINITE_BLOCK = 1 << 22  # values checked at a time: no full-size mask for hour-long outputs


def umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def disk_full_error(err: BaseException, path: str | os.PathLike) -> DiskFullError | None:
    """A `DiskFullError` for writing `path` if `err` means no space or quota is left, else None.

    OSError's errno decides when there is one; libraries that raise their own types are
    recognised by their message, or (libsndfile says nothing useful) by less than
    LOW_SPACE_BYTES left in the target folder.
    """
    if isinstance(err, DiskFullError):
        return err
    code = getattr(err, "errno", None)
    full = code in _DISK_FULL_ERRNOS
    if not full and not (isinstance(err, OSError) and code is not None):
        text = str(err).lower()
        full = any(t in text for t in _DISK_FULL_TEXT) or _low_space(Path(path).parent)
    if not full:
        return None
    code = code if code in _DISK_FULL_ERRNOS else errno.ENOSPC
    what = "quota exceeded" if code != errno.ENOSPC else "disk full"
    return DiskFullError(code, f"{what} writing {path}", str(path))


def is_disk_full(err: BaseException) -> bool:
    """True for `DiskFullError` and OSError ENOSPC/EDQUOT: nothing more fits where outputs go."""
    return isinstance(err, DiskFullError) or (
        isinstance(err, OSError) and err.errno in _DISK_FULL_ERRNOS
    )


def _low_space(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < LOW_SPACE_BYTES
    except OSError:
        return False


def atomic_path(path: str | os.PathLike) -> Path:
    """Create and return an empty temporary sibling of `path` (folders made as needed) to
    write to, then `os.replace` onto `path`; its mode is `0o666 & ~umask` like `open()`'s
    (a writer that recreates the file may change it). Prefer `atomic_output`, which also
    restores the mode, renames and cleans up."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = path.with_name(f".{path.name[:200]}.{os.getpid()}.{secrets.token_hex(4)}{TMP_SUFFIX}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as err:
            full = disk_full_error(err, path)
            if full is not None:
                raise full from err
            raise
        return tmp
    raise FileExistsError(f"{path.parent}: could not create a temporary file for {path.name}")


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """`with atomic_output(path) as tmp:` write `tmp`; on success it replaces `path` with
    mode `0o666 & ~umask` whatever mode the writer gave it.

    On any failure the temporary file is removed; a full disk becomes `DiskFullError`.
    """
    path = Path(path)
    tmp = atomic_path(path)
    try:
        yield tmp
        publish(tmp, path)
    except Exception as err:
        full = disk_full_error(err, path)  # before the partial file is removed and frees space
        tmp.unlink(missing_ok=True)
        if full is not None and full is not err:
            raise full from err
        raise
    finally:
        tmp.unlink(missing_ok=True)


def publish(tmp: Path, path: str | os.PathLike) -> None:
    """Move a finished temporary file onto `path` with mode `0o666 & ~umask`, whatever mode the
    writer gave it (safetensors writes 0600)."""
    os.chmod(tmp, 0o666 & ~umask())
    os.replace(tmp, path)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> None:
    """Call `write(tmp)` on a temporary sibling of `path`, then rename it onto `path`."""
    with atomic_output(path) as tmp:
        write(tmp)


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Indented JSON, written atomically (values JSON cannot hold are written as str)."""
    text = json.dumps(value, indent=2, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def _pid_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or cannot tell: keep its files)
    return True


def remove_stale_temporaries(folders: Iterable[str | os.PathLike]) -> list[Path]:
    """Delete our temporary files left in `folders` (not below) by processes that were killed.

    Only names this module makes are considered (`.<name>.<pid>.<hex>.tmp`, plus the
    mkstemp names older versions used for sonotok's own output types); a temporary of a
    process still running on this machine is kept. Returns what was removed.
    """
    removed = []
    for folder in {Path(f) for f in folders}:
        try:
            names = [e.name for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
        except OSError:
            continue
        for name in names:
            if not (name.startswith(".") and name.endswith(TMP_SUFFIX)):
                continue
            match = _TMP_NAME.match(name)
            if match is not None and _pid_running(int(match["pid"])):
                continue
            if match is None and not _OLD_TMP_NAME.match(name):
                continue
            try:
                (folder / name).unlink()
                removed.append(folder / name)
            except OSError:
                pass
    return removed


def check_finite(values: torch.Tensor | np.ndarray, what: str, source: str | os.PathLike) -> None:
    """Raise ModelOutputError if model output `values` holds NaN or ±inf.

    `what` names the output ("decoded audio", "latents") and `source` the input it came from,
    so the one-line error says which file failed and why.
    """
    if isinstance(values, np.ndarray):
        if not np.issubdtype(values.dtype, np.inexact):
            return
        flat = values.reshape(-1)
        bad = sum(
            int((~np.isfinite(flat[i : i + _FINITE_BLOCK])).sum())
            for i in range(0, flat.size, _FINITE_BLOCK)
        )
    else:
        if not (values.is_floating_point() or values.is_complex()):
            return
        flat = values.detach().reshape(-1)
        bad = sum(
            int((~torch.isfinite(flat[i : i + _FINITE_BLOCK])).sum())
            for i in range(0, flat.numel(), _FINITE_BLOCK)
        )
    if bad:
        raise ModelOutputError(
            f"{source}: NaN or infinite values in the {what} ({bad} of {flat.shape[0]}); nothing "
            "was written. The model is broken (corrupt or diverged weights: re-download or "
            "retrain it) or overflowed in reduced precision (try --dtype fp32)"
        )
