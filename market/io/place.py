"""Putting an output folder in place without ever destroying what a user made.

:func:`publish_folder` builds the folder in a fresh temporary folder beside the target and
moves it into place only when it is complete. An existing target is replaced only when it
is a flexmarket output of the same kind (its ``manifest.json`` says so) or ``force`` is
given, and never when it is the current directory, one of its parents, or the home folder.
Folders and files follow the user's umask.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from market.errors import OutputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def output_kind(folder: Path) -> str | None:
    """The ``kind`` a flexmarket output folder's manifest declares, or None."""
    try:
        kind = json.loads((folder / "manifest.json").read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def check_target(target: Path, kind: str, force: bool = False) -> None:
    """Raise :class:`OutputError` unless ``target`` may be (re)placed by a ``kind`` output."""
    resolved = target.resolve()
    cwd = Path.cwd().resolve()
    protected = {cwd, *cwd.parents, Path.home().resolve()}
    if resolved in protected:
        raise OutputError(f"{target}: refusing to write an output over the current folder, a parent of it or home")
    if not target.exists():
        return
    if not target.is_dir():
        raise OutputError(f"{target} exists and is not a folder; nothing written")
    found = output_kind(target)
    if found != kind and not force and any(target.iterdir()):
        what = f"a flexmarket {found} folder" if found else "not a flexmarket output"
        raise OutputError(f"{target} exists and is {what}; nothing written (choose another folder, or --force)")


def publish_folder(target: str | Path, kind: str, build: Callable[[Path], None], force: bool = False) -> Path:
    """Build ``target`` with ``build(tmp)`` in a temporary folder beside it, then move it into
    place (an earlier output of the same kind is removed only after that)."""
    target = Path(target)
    check_target(target, kind, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: follow the umask like mkdir
    old: Path | None = None
    try:
        build(tmp)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            os.rmdir(old)
            target.rename(old)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not target.exists():
            old.rename(target)  # put the earlier output back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target
