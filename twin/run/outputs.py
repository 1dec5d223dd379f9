"""Output folders and files: one policy for every command.

* Every command writes under ``--out``: a folder (``run``, ``emulate``, ``calibrate``, ``compare``) or a
  file (``plan``: a scenario; ``report``: an HTML file). Without ``--out``, a folder or file named after
  the command and the UTC time under ``results/`` (:func:`timestamped_path`).
* Nothing is overwritten without ``--force``: an existing non-empty folder or an existing file is
  refused. With ``--force``, only what twin itself wrote is replaced: a folder holding twin's marker file
  (:data:`MARKER`, written by :func:`prepare_output_folder`), a file that :func:`written_by_twin` accepts.
  Never an input of the command, even with ``--force``.
* Every write goes through :mod:`twin.run.atomic`, so a reader or a crash never sees half a file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from twin.errors import TwinInputError
from twin.run.atomic import atomic_write_json

#: Marker file in every output folder twin makes: ``{"written_by": "twin <command>"}``.
MARKER = ".twin-output.json"

#: Default root of output folders and files.
RESULTS_ROOT = Path("results")


def slug(name: str) -> str:
    """``name`` made safe for a file name (runs of other characters as ``-``); never empty."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


def timestamped_path(stem: str, root: Path = RESULTS_ROOT, suffix: str = "", now: dt.datetime | None = None) -> Path:
    """``root/<stem>-<UTC YYYYmmdd-HHMMSS><suffix>``, made unique with ``-2``, ``-3``... if it exists.

    Args:
        stem: what is written (a scenario name, ``compare``, ``emulate``...); slugified.
        root: the folder it goes in.
        suffix: a file suffix (``.yaml``), empty for a folder.
        now: the time to stamp (default: now, UTC).
    """
    now = now or dt.datetime.now(dt.UTC)
    base = f"{slug(stem)}-{now.strftime('%Y%m%d-%H%M%S')}"
    path, k = root / f"{base}{suffix}", 1
    while path.exists():
        k += 1
        path = root / f"{base}-{k}{suffix}"
    return path


def _is_twin_folder(path: Path) -> bool:
    marker = path / MARKER
    if not marker.is_file():
        return False
    try:
        return str(json.loads(marker.read_text(encoding="utf-8")).get("written_by", "")).startswith("twin")
    except (OSError, ValueError, AttributeError):
        return False


def check_output_folder(path: str | Path, *, force: bool = False, option: str = "--out",
                        inputs: Iterable[Path] = ()) -> bool:
    """Check, without touching anything, that ``path`` may become an output folder (the rules of
    :func:`prepare_output_folder`). Commands call it before their work and prepare the folder after.

    Returns:
        True if the folder exists with content that ``force`` allows to replace.

    Raises:
        TwinInputError: see :func:`prepare_output_folder`.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise TwinInputError(f"{option} is an existing file, not a folder", path=str(out))
    if not (out.is_dir() and any(item.name != MARKER for item in out.iterdir())):
        return False
    if not force:
        raise TwinInputError(f"{option} folder already exists and is not empty (--force replaces a folder "
                             "twin wrote)", path=str(out))
    if not _is_twin_folder(out):
        raise TwinInputError(f"{option} folder was not written by twin: refusing to replace it, even with "
                             "--force", path=str(out))
    resolved = out.resolve()
    for item in inputs:
        if resolved == Path(item).resolve() or resolved in Path(item).resolve().parents:
            raise TwinInputError(f"{option} folder holds an input of this command ({item}): refusing to "
                                 "replace it", path=str(out))
    return True


def prepare_output_folder(path: str | Path, command: str, *, force: bool = False, option: str = "--out",
                          inputs: Iterable[Path] = ()) -> Path:
    """Make an empty output folder for ``twin <command>``, or refuse.

    Args:
        path: the folder.
        command: the command writing it (recorded in :data:`MARKER`).
        force: replace an existing non-empty folder, if twin wrote it.
        option: the option naming the folder, for messages.
        inputs: files or folders the command reads: never inside the folder replaced.

    Returns:
        The folder, existing and empty but for :data:`MARKER` (a folder holding only the marker counts as
        empty, so preparing twice is harmless).

    Raises:
        TwinInputError: the path is a file; the folder is not empty (and ``force`` is not given, or twin
            did not write it, or it holds an input); it cannot be made.
    """
    out = Path(path)
    if check_output_folder(out, force=force, option=option, inputs=inputs):
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / MARKER, {"written_by": f"twin {command}"})
    except OSError as exc:
        raise TwinInputError(f"cannot create the {option} folder: {exc.strerror or exc}", path=str(out)) from None
    return out


def written_by_twin(path: Path, marker: bytes, head_bytes: int = 4096) -> bool:
    """Whether the file's first ``head_bytes`` hold ``marker`` (the line twin writes at the top)."""
    try:
        with path.open("rb") as handle:
            return marker in handle.read(head_bytes)
    except OSError:
        return False


def check_output_file(path: str | Path, *, marker: bytes | Callable[[Path], bool], force: bool = False,
                      option: str = "--out", suffixes: tuple[str, ...] = (), inputs: Iterable[Path] = (),
                      head_bytes: int = 4096) -> Path:
    """Refuse, before any work, an output file that would overwrite something it should not.

    Args:
        path: the file to write.
        marker: bytes twin writes at the top of such files (looked for in the first ``head_bytes``), or a
            predicate saying whether a file is one.
        force: overwrite an existing file, if twin wrote it.
        option: the option naming the file, for messages.
        suffixes: accepted file suffixes (lower case, with the dot); empty accepts any.
        inputs: files the command reads: never overwritten, even with ``force``.

    Returns:
        The path, whose parent folder exists.

    Raises:
        TwinInputError: naming the file and why it is refused.
    """
    out = Path(path)
    if suffixes and out.suffix.lower() not in suffixes:
        raise TwinInputError(f"{option} must end in {' or '.join(suffixes)}", path=str(out))
    resolved = out.resolve()
    if any(resolved == Path(item).resolve() for item in inputs):
        raise TwinInputError(f"{option} names an input of this command: choose another file", path=str(out))
    if out.exists():
        if not out.is_file():
            raise TwinInputError(f"{option} exists and is not a file", path=str(out))
        if not force:
            raise TwinInputError(f"{option} exists: refusing to overwrite it (--force replaces a file twin "
                                 "wrote)", path=str(out))
        is_ours = marker(out) if callable(marker) else written_by_twin(out, marker, head_bytes)
        if not is_ours:
            raise TwinInputError(f"{option} exists and was not written by twin: refusing to overwrite it, even "
                                 "with --force", path=str(out))
    if out.parent.exists() and not out.parent.is_dir():
        raise TwinInputError(f"{option}: {out.parent} is not a folder", path=str(out))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TwinInputError(f"cannot create the folder of {option}: {exc.strerror or exc}", path=str(out)) from None
    return out


__all__ = ["MARKER", "RESULTS_ROOT", "check_output_file", "check_output_folder", "prepare_output_folder", "slug", "timestamped_path",
           "written_by_twin"]
