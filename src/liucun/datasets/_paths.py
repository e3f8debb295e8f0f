"""Where the shared research datasets live.

The datasets are never copied into the repository: they sit in ``shared/datasets`` beside
the project (``<root>/main`` is the project, ``<root>/shared/datasets`` the data), and CI
has the same layout. ``LIUCUN_DATASETS_DIR`` overrides the search.
"""

from __future__ import annotations

import os
from pathlib import Path

from liucun.core import InvalidInput

ENV_VAR = "LIUCUN_DATASETS_DIR"
_RELATIVE = Path("shared") / "datasets"
# Module-level so that a test can point the search somewhere empty.
_PACKAGE_DIR = Path(__file__).resolve().parent


def datasets_dir() -> Path:
    """The directory holding the shared research datasets.

    Returns
    -------
    Path
        ``$LIUCUN_DATASETS_DIR`` when that variable is set and not empty; otherwise the
        first ``shared/datasets`` directory found by walking up from the current working
        directory, then from this package's location.

    Raises
    ------
    InvalidInput
        If ``LIUCUN_DATASETS_DIR`` names something that is not a directory, or if no
        ``shared/datasets`` directory is found. The message says where it looked.

    Examples
    --------
    >>> (datasets_dir() / "cdnow" / "CDNOW_sample.txt").is_file()
    True
    """
    override = os.environ.get(ENV_VAR, "")
    if override:
        path = Path(override).expanduser()
        if not path.is_dir():
            raise InvalidInput(
                f"{ENV_VAR} is set to {str(path)!r}, which is not a directory; point it at "
                "the folder holding cdnow/ and donations/, or unset it to search for "
                "shared/datasets"
            )
        return path
    starts = (Path.cwd().resolve(), _PACKAGE_DIR)
    for start in starts:
        for folder in (start, *start.parents):
            candidate = folder / _RELATIVE
            if candidate.is_dir():
                return candidate
    looked = " and ".join(repr(str(s)) for s in starts)
    raise InvalidInput(
        f"no {_RELATIVE.as_posix()} directory found in {looked} or any folder above them; "
        f"set {ENV_VAR} to the folder holding cdnow/ and donations/"
    )


def resolve_file(path: str | os.PathLike[str] | None, *parts: str) -> Path:
    """``path`` if given, else ``datasets_dir() / parts``; it must be an existing file."""
    file = Path(path) if path is not None else datasets_dir().joinpath(*parts)
    if not file.is_file():
        raise InvalidInput(
            f"{str(file)!r} is not a file; pass the path of {parts[-1]} or set {ENV_VAR} "
            f"to the folder holding {'/'.join(parts)}"
        )
    return file
