"""Putting outputs in place without ever destroying what a user made.

:func:`publish_folder` builds the folder in a fresh temporary folder beside the target and
moves it into place only when it is complete. An existing target is replaced only when it
is a flexmarket output of the same kind (its ``manifest.json`` says so) or ``force`` is
given, and never when it is the current directory, one of its parents, or the home folder.
:func:`publish_files` adds a set of files to a folder, all or none.

Two rules hold even with ``force``:

- **outputs never touch inputs**: a target equal to, inside, or containing anything the
  command read (batch, run, meter file, message folder, ...) is refused
  (:func:`check_apart`);
- **no write follows a symbolic link**: a target that is a link, or a link where a file
  would be written, is refused.

Folders and files follow the user's umask.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from market.errors import OutputError

UNFORCED_KINDS = {"synthetic-batch", "settlement-run", "uftp-import", "forecast-batch"}  # commands without --force


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


def check_apart(target: Path, inputs: Iterable[str | Path | None]) -> None:
    """Raise :class:`OutputError` if ``target`` is, is inside, or contains one of ``inputs``
    (both with links resolved), or is itself a symbolic link. ``--force`` never lifts this."""
    target = Path(target)
    if target.is_symlink():
        raise OutputError(f"{target} is a symbolic link; flexmarket never writes through one (give a real path)")
    out = target.resolve()
    for given in inputs:
        if given is None or str(given) == "":
            continue
        source = Path(given).resolve()
        if out == source:
            relation = "is"
        elif source in out.parents:
            relation = "is inside"
        elif out in source.parents:
            relation = "contains"
        else:
            continue
        raise OutputError(
            f"output {target} {relation} the input {given}: an output never touches what the command reads, "
            "even with --force; nothing written (choose another folder)"
        )


def check_target(target: Path, kind: str, force: bool = False, inputs: Iterable[str | Path | None] = ()) -> None:
    """Raise :class:`OutputError` unless ``target`` may be (re)placed by a ``kind`` output
    (and is apart from every one of ``inputs``, see :func:`check_apart`)."""
    check_apart(target, inputs)
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
        hint = "" if kind in UNFORCED_KINDS else ", or --force"
        raise OutputError(f"{target} exists and is {what}; nothing written (choose another folder{hint})")


def publish_folder(
    target: str | Path,
    kind: str,
    build: Callable[[Path], None],
    force: bool = False,
    inputs: Iterable[str | Path | None] = (),
) -> Path:
    """Build ``target`` with ``build(tmp)`` in a temporary folder beside it, then move it into
    place (an earlier output of the same kind is removed only after that)."""
    target = Path(target)
    check_target(target, kind, force, inputs)
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


def check_new_files(folder: Path, names: Iterable[str], inputs: Iterable[str | Path | None] = ()) -> list[Path]:
    """The paths ``folder/name``, refused (:class:`OutputError`) if ``folder`` touches an input
    or is a link, or if any of them exists already (a dangling link counts: it exists)."""
    check_apart(folder, inputs)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder; nothing written")
    paths = [folder / n for n in names]
    clash = [str(p) for p in paths if os.path.lexists(p)]
    if clash:
        raise OutputError(f"{clash[0]} exists; nothing written (choose another folder)")
    return paths


def publish_files(
    folder: str | Path, files: dict[str, Callable[[Path], None]], inputs: Iterable[str | Path | None] = ()
) -> list[Path]:
    """Add the files ``name -> write(path)`` to ``folder``, all or none: each is written into
    a temporary folder beside ``folder`` first, then moved in; none may exist already, and
    no write follows a link (see :func:`check_new_files`)."""
    folder = Path(folder)
    paths = check_new_files(folder, files, inputs)
    folder.parent.mkdir(parents=True, exist_ok=True)
    created = not folder.exists()
    if created:
        return [p for p in publish_new_folder(folder, files)]
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder))
    moved: list[Path] = []
    try:
        for name, write in files.items():
            write(tmp / name)
        check_new_files(folder, files)  # nothing appeared meanwhile
        for name in files:
            os.rename(tmp / name, folder / name)
            moved.append(folder / name)
    except BaseException:
        for path in moved:  # all or none
            path.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths


def publish_new_folder(folder: Path, files: dict[str, Callable[[Path], None]]) -> list[Path]:
    """Make ``folder`` (which must not exist) with ``files``, built beside it and moved whole."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        for name, write in files.items():
            write(tmp / name)
        if os.path.lexists(folder):
            raise OutputError(f"{folder} appeared while it was being written; nothing written")
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [folder / n for n in files]
