"""Finding input files, telling their format, and refusing garbage with one clear sentence."""

from __future__ import annotations

import glob as globlib
import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from liucun.core import InvalidInput
from liucun.warehouse import FileFormat

_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
SNIFF_BYTES = 1 << 20  # 1 MiB


@dataclass(frozen=True)
class Source:
    """One input: a file and its format, or in-memory Arrow ``data`` named by ``path``."""

    path: Path
    format: FileFormat
    compressed: bool
    data: pa.Table | None = None

    @classmethod
    def from_arrow(cls, data: pa.Table, name: str) -> Source:
        return cls(Path(name), "parquet", False, data)


def file_format(path: Path) -> tuple[FileFormat, bool]:
    """Format and gzip flag from the file name, e.g. ``orders.csv.gz`` → ``("csv", True)``."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in (".gz", ".gzip")
    if compressed:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]], compressed
    known = ", ".join(sorted(_SUFFIXES))
    raise InvalidInput(
        f"{path}: cannot tell the file format from its name; use one of the extensions "
        f"{known} (optionally followed by .gz)"
    )


def discover(paths: list[str | Path]) -> list[Source]:
    """Expand files, directories (recursively) and glob patterns into sources, sorted."""
    found: list[Path] = []
    for raw in paths:
        text = str(raw)
        if any(ch in text for ch in "*?[") and not Path(text).exists():
            matches = [Path(m) for m in globlib.glob(text, recursive=True)]
            if not matches:
                raise InvalidInput(f"no file matches {text!r}")
            found.extend(m for m in matches if m.is_file())
            continue
        path = Path(text)
        if path.is_dir():
            inside = [
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
            ]
            usable = [p for p in inside if _has_known_suffix(p)]
            if not usable:
                raise InvalidInput(
                    f"directory {path} has no files to ingest (looked for "
                    f"{', '.join(sorted(_SUFFIXES))}, optionally .gz)"
                )
            found.extend(usable)
        elif path.is_file():
            found.append(path)
        else:
            raise InvalidInput(f"{path} does not exist; check the path")
    if not found:
        raise InvalidInput("no input files: give files, directories or glob patterns")
    unique = sorted(set(found))
    return [Source(p, *file_format(p)) for p in unique]


def _has_known_suffix(path: Path) -> bool:
    try:
        file_format(path)
    except InvalidInput:
        return False
    return True


def sniff(source: Source) -> None:
    """Refuse files that cannot be what their name says, before any parser sees them."""
    path = source.path
    if source.data is not None:
        return
    if path.stat().st_size == 0:
        raise InvalidInput(f"{path} is empty; export the data again")
    if source.format == "parquet":
        _sniff_parquet(path)
        return
    if source.compressed:
        check_gzip_stream(path)
    head = _head(source)
    if not head.strip():
        raise InvalidInput(f"{path} is empty (no rows, not even a header); export the data again")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or _looks_utf16(head):
        raise InvalidInput(
            f"{path} is UTF-16 text (Excel's 'Unicode Text'); save it as CSV UTF-8, or convert "
            f"it: `iconv -f UTF-16 -t UTF-8 {path.name} > {path.stem}.utf8{path.suffix}`"
        )
    if b"\x00" in head:
        raise InvalidInput(
            f"{path} looks binary, not {source.format.upper()} text; check that it is the "
            "right file (a spreadsheet must be saved as CSV first)"
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the sample's end
            raise InvalidInput(
                f"{path} is not UTF-8 text (byte {exc.start + 1} is invalid); convert it from "
                "its encoding, e.g. `iconv -f GBK -t UTF-8` (Chinese Windows) or "
                "`iconv -f LATIN1 -t UTF-8` (Western Windows)"
            ) from None
    if b"\n" not in head and len(head) >= SNIFF_BYTES:
        raise InvalidInput(
            f"{path}: line 1 is longer than {SNIFF_BYTES // (1 << 20)} MiB; this is not a "
            f"line-based {source.format.upper()} file"
        )
    if source.format == "jsonl" and not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise InvalidInput(
            f"{path}: JSON Lines must hold one JSON object per line, starting with '{{'"
        )


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 without a byte-order mark: every other byte of ASCII text is NUL."""
    sample = head[:4096]
    return len(sample) >= 8 and sample[1::2].count(0) > 0.9 * (len(sample) // 2)


def _head(source: Source) -> bytes:
    if source.compressed:
        try:
            with gzip.open(source.path, "rb") as fh:
                return fh.read(SNIFF_BYTES)
        except (OSError, EOFError) as exc:
            raise InvalidInput(f"{source.path} is not a valid gzip file ({exc})") from None
    with open(source.path, "rb") as fh:
        return fh.read(SNIFF_BYTES)


def check_gzip_stream(path: Path) -> None:
    """Read a gzip file through to its end, so a truncated one is refused whole.

    A file cut at a deflate flush point decompresses cleanly up to the cut: the engine
    would load its first rows and never mention the rest. Only the end-of-stream marker
    and the CRC tell; reading through costs about what decompressing costs (see
    docs/data-model.md), far less than parsing.
    """
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(_GZIP_CHUNK):
                pass
    except EOFError:
        raise InvalidInput(
            f"{path} ends before the end of its compressed stream (the gzip file is truncated); "
            "nothing was loaded; re-download or re-export it"
        ) from None
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise InvalidInput(
            f"{path} is a damaged gzip file ({exc}); nothing was loaded; re-download or "
            "re-export it"
        ) from None


_GZIP_CHUNK = 1 << 22  # 4 MiB


def _sniff_parquet(path: Path) -> None:
    with open(path, "rb") as fh:
        start = fh.read(4)
        fh.seek(-4, 2) if path.stat().st_size >= 8 else None
        end = fh.read(4)
    if start != b"PAR1" or end != b"PAR1":
        raise InvalidInput(
            f"{path} is not a Parquet file (no PAR1 marker); check the file or its extension"
        )
