"""Nightly batches: find, land (copy, never modify), read, fingerprint and quarantine.

Rules that make the audit trail trustworthy:
- the client's incoming file is never touched; landing copies it byte for byte (tmp + rename);
- a landed batch is never rewritten: landing the same date again reuses it if the bytes match and
  refuses (BatchConflictError) if the source changed afterwards;
- quarantine *moves* the landed file (os.replace on one filesystem) next to a JSON reason file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steward.config import Engagement
from steward.settings import StewardPaths, inside

if TYPE_CHECKING:
    import pandas as pd


class BatchMissingError(FileNotFoundError):
    """No batch file for the logical date (the run is skipped, not failed)."""


class BatchConflictError(RuntimeError):
    """The incoming file changed after it was landed: refuse rather than rewrite history."""


class SourceConfigurationError(RuntimeError):
    """A source that cannot be read as configured (missing table or object store permission, a query error):
    retrying cannot fix it, so the task fails at once with this message."""


class BatchReadError(ValueError):
    """The file exists but cannot be parsed as the declared format."""


@dataclass(frozen=True)
class LandedBatch:
    engagement: str
    logical_date: str
    source_path: str
    path: str
    sha256: str
    size_bytes: int
    state: str  # "landed" | "quarantined" (already quarantined by an earlier run of this date)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` for code that writes files itself (Evidently, matplotlib): renamed
    over `path` on success, removed on any failure (a full disk leaves no half-written file behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename: readers never see half a file."""
    with atomic_target(path) as tmp:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def atomic_write_json(path: Path, payload: Any) -> None:
    """Strict JSON (no NaN or infinity: steward.finite replaces them by null before writing)."""
    from steward.finite import scrub

    text = json.dumps(scrub(payload), indent=2, sort_keys=True, default=str, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def incoming_path(eng: Engagement, paths: StewardPaths, logical_date: dt.date) -> Path:
    return inside(paths.data_root, f"{eng.data.directory}/{eng.batch_filename(logical_date)}")


def reference_path(eng: Engagement, paths: StewardPaths) -> Path:
    return inside(paths.data_root, eng.data.reference)


def landed_path(eng: Engagement, paths: StewardPaths, logical_date: dt.date) -> Path:
    return inside(paths.landed, f"{eng.id}/{logical_date.isoformat()}/{eng.batch_filename(logical_date)}")


def quarantine_dir(eng: Engagement, paths: StewardPaths, logical_date: dt.date) -> Path:
    return inside(paths.quarantine, f"{eng.id}/{logical_date.isoformat()}")


def land_batch(eng: Engagement, paths: StewardPaths, logical_date: dt.date) -> LandedBatch:
    """Copy the incoming file for `logical_date` into the landed area (idempotent).

    Raises:
        BatchMissingError: no file for that date.
        BatchConflictError: the date was landed before with different bytes.
    """
    source = incoming_path(eng, paths, logical_date)
    if not source.is_file():
        raise BatchMissingError(f"no batch for {eng.id} on {logical_date}: expected {source}")
    source_sha = sha256_file(source)
    target = landed_path(eng, paths, logical_date)
    quarantined = quarantine_dir(eng, paths, logical_date) / target.name
    for existing, state in ((target, "landed"), (quarantined, "quarantined")):
        if existing.exists():
            existing_sha = sha256_file(existing)
            if existing_sha != source_sha:
                raise BatchConflictError(
                    f"{source} changed after it was landed on an earlier run ({state} copy {existing} has "
                    f"sha256 {existing_sha[:12]}, incoming has {source_sha[:12]}); refusing to rewrite a landed batch"
                )
            return LandedBatch(eng.id, logical_date.isoformat(), str(source), str(existing), source_sha,
                               existing.stat().st_size, state)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    if sha256_file(tmp) != source_sha:  # the source was being written while we copied
        tmp.unlink()
        raise BatchConflictError(f"{source} changed while it was being landed; retry when the upload is complete")
    os.replace(tmp, target)
    return LandedBatch(eng.id, logical_date.isoformat(), str(source), str(target), source_sha,
                       target.stat().st_size, "landed")


def read_for(eng: Engagement, path: Path | str, fmt: str | None = None) -> pd.DataFrame:
    """Read a batch, label or reference file of `eng` with the engagement's declared column types. A SQL
    engagement's landed copies are Parquet; its reference file is read by its suffix."""
    if fmt is None and eng.data.source != "files":  # landed copies by their own suffix, the reference too
        fmt = "parquet" if str(path).endswith(".parquet") else "csv"
    return read_batch(path, fmt or eng.data.format, eng.column_types)


def read_batch(path: Path | str, fmt: str, types: dict[str, str] | None = None) -> pd.DataFrame:
    """Parse a batch file; any parser failure becomes a BatchReadError with the parser's reason.

    With `types` (the engagement's schema), columns are read as declared (steward.sources.schema); without,
    pandas infers them per file.
    """
    import pandas as pd

    from steward.sources import schema

    path = Path(path)
    if path.stat().st_size == 0:
        raise BatchReadError("file is empty (0 bytes)")
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
            return schema.cast(frame, types) if types else frame
        if types:
            return schema.read_csv(path, types)
        return pd.read_csv(path, encoding="utf-8", on_bad_lines="error", low_memory=False)
    except UnicodeDecodeError as exc:
        raise BatchReadError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except pd.errors.EmptyDataError:
        raise BatchReadError("no columns to parse (empty or whitespace-only file)") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise BatchReadError(f"cannot parse as {fmt}: {str(exc).strip().splitlines()[0]}") from None
    except Exception as exc:  # pyarrow raises its own types for corrupt parquet
        raise BatchReadError(f"cannot parse as {fmt}: {type(exc).__name__}: {exc}") from None


def profile(df: pd.DataFrame) -> dict[str, Any]:
    """Rows and schema of a parsed batch: the 'shape' half of its fingerprint."""
    return {
        "rows": int(len(df)),
        "columns": {str(c): str(t) for c, t in df.dtypes.items()},
        "null_counts": {str(c): int(n) for c, n in df.isna().sum().items()},
        "distinct_counts": {str(c): int(n) for c, n in df.nunique(dropna=True).items()},
    }


def quarantine(batch_path: Path, destination: Path, reasons: dict[str, Any]) -> Path:
    """Move (rename) the landed file into quarantine and write its reason file beside it.

    Idempotent: a batch already in quarantine stays where it is; the reasons are refreshed.
    """
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / batch_path.name
    if batch_path.resolve() != target.resolve():
        os.replace(batch_path, target)  # a move, never copy-then-delete
        try:
            batch_path.parent.rmdir()  # the empty per-date landed folder
        except OSError:
            pass
    atomic_write_json(destination / "reasons.json", reasons)
    return target
