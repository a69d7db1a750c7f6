"""Nightly batches from object storage (ADR 0023): one object per night, named by a URL with `{date}`.

The caller gives `Open` (url -> a path object with `exists()` and `open("rb")`: Airflow's ObjectStoragePath
with the engagement's connection, from the Airflow layer); nothing here imports Airflow. The object is
streamed into the landed area byte for byte with its sha256 (the client's object is only read); a rerun
downloads it again and refuses to rewrite a landed night whose object changed, as for local files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from steward.config import Engagement, ObjectStorageSource
from steward.settings import StewardPaths
from steward.sources.batches import (
    BatchConflictError,
    BatchMissingError,
    LandedBatch,
    SourceConfigurationError,
    landed_path,
    quarantine_dir,
    sha256_file,
)

Open = Callable[[str], Any]
CHUNK = 8 << 20


class ObjectStorageError(SourceConfigurationError):
    """The object cannot be read as configured (permission denied, no such bucket): retrying cannot fix it."""


class ObjectStorageUnavailableError(ConnectionError):
    """The store did not answer: the task retries, then the night fails."""


def source_of(eng: Engagement) -> ObjectStorageSource:
    assert isinstance(eng.data, ObjectStorageSource), f"{eng.id} does not read object storage"
    return eng.data


def night_url(eng: Engagement, day: dt.date) -> str:
    return source_of(eng).url.format(date=day.isoformat())


def dataset(url: str) -> dict[str, str]:
    """OpenLineage's naming: s3://bucket + the key; a local file: namespace `file` + its path."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return {"namespace": "file", "name": parts.path}
    return {"namespace": f"{parts.scheme}://{parts.netloc}", "name": parts.path.lstrip("/")}


def _where(eng: Engagement, url: str) -> str:
    conn = source_of(eng).conn_id
    return f"{eng.id}: {url}" + (f" (connection {conn!r})" if conn else "")


def arrived(eng: Engagement, day: dt.date, open_path: Open) -> bool:
    url = night_url(eng, day)
    try:
        return bool(open_path(url).exists())
    except PermissionError as exc:
        raise ObjectStorageError(f"{_where(eng, url)}: permission denied: {exc}") from None


def land(eng: Engagement, paths: StewardPaths, day: dt.date, open_path: Open) -> LandedBatch:
    """Stream the night's object into the landed area (idempotent per night).

    Raises:
        BatchMissingError: no object for the night.
        BatchConflictError: the night was landed before and its object changed since.
        ObjectStorageError / ObjectStorageUnavailableError: refused / no answer.
    """
    url = night_url(eng, day)
    target = landed_path(eng, paths, day)
    quarantined = quarantine_dir(eng, paths, day) / target.name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        source = open_path(url)
        if not source.exists():
            raise BatchMissingError(f"no batch for {eng.id} on {day}: expected {url}")
        digest = hashlib.sha256()
        with source.open("rb") as fh, tmp.open("wb") as out:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except (BatchMissingError, FileNotFoundError) as exc:
        tmp.unlink(missing_ok=True)
        _remove_empty(target.parent)
        if isinstance(exc, BatchMissingError):
            raise
        raise BatchMissingError(f"no batch for {eng.id} on {day}: expected {url}") from None
    except PermissionError as exc:
        tmp.unlink(missing_ok=True)
        _remove_empty(target.parent)
        raise ObjectStorageError(f"{_where(eng, url)}: permission denied: {exc}") from None
    except Exception as exc:  # network, endpoint, throttling: the task retries
        tmp.unlink(missing_ok=True)
        _remove_empty(target.parent)
        raise ObjectStorageUnavailableError(f"{_where(eng, url)}: object store unreachable: "
                                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    sha = digest.hexdigest()
    for existing, state in ((target, "landed"), (quarantined, "quarantined")):
        if existing.is_file():
            tmp.unlink()
            _remove_empty(target.parent)
            kept = sha256_file(existing)
            if kept != sha:
                raise BatchConflictError(f"{url} changed after it was landed on an earlier run ({state} copy {existing} "
                                         f"has sha256 {kept[:12]}, the object now {sha[:12]}); refusing to rewrite a "
                                         "landed batch")
            return LandedBatch(eng.id, day.isoformat(), url, str(existing), sha, existing.stat().st_size, state)
    os.replace(tmp, target)
    return LandedBatch(eng.id, day.isoformat(), url, str(target), sha, target.stat().st_size, "landed")


def _remove_empty(folder: Any) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
