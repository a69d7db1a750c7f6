"""The suite's temporary files in RAM when the machine has a RAM filesystem with room (ADR 0018 point 14).

Every test home holds SQLite databases (Airflow's metadata, MLflow's store, steward's history) that commit, and so
sync to disk, many times a night, and a run writes about 1.9 GB of reports, models and bundles. On a disk that is
the kernel's journal and write-back on top of the work: eight churn nights took 12.5 CPU-s with their home on
/dev/shm against 13.7 to 14.2 on the disk (/tmp), 2.0 against 2.3 s of system time (measured 2026-12-06). A test
asserts on what it wrote, never on which filesystem holds it; the outage suite still mounts its own 64 KiB
tmpfs where it needs a disk that fills up.

The controller process picks the folder and exports it as TMPDIR, so the xdist workers, the servers and every
subprocess a test starts write there too. A run that passes removes it; a run that fails keeps it and says where.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENV = "STEWARD_TEST_TMPDIR"  # set by the process that made the folder, inherited by the workers
CANDIDATE = Path("/dev/shm")
MIN_FREE_BYTES = 6 * 1024**3  # a run writes ~1.9 GB; a container's 64 MB /dev/shm does not qualify


def ram_filesystem(path: Path = CANDIDATE, mounts: Path = Path("/proc/mounts"), min_free: int = MIN_FREE_BYTES) -> bool:
    """`path` is the mount point of a tmpfs with at least `min_free` bytes available to us and writable."""
    try:
        fs_types = {fields[1]: fields[2] for fields in (line.split() for line in mounts.read_text().splitlines())
                    if len(fields) >= 3}
        stats = os.statvfs(path)
    except OSError:
        return False
    return (fs_types.get(str(path)) == "tmpfs" and stats.f_bavail * stats.f_frsize >= min_free
            and os.access(path, os.W_OK | os.X_OK))


def claim(environ: os._Environ | dict[str, str] = os.environ) -> Path | None:
    """The folder this run writes its temporary files to, made here when this process is the first to ask
    (None: the default temporary folder, untouched). Sets TMPDIR and `tempfile.tempdir` when it made one."""
    inherited = environ.get(ENV)
    if inherited:
        return None  # a worker of a run whose controller made it: TMPDIR came with the environment
    if not ram_filesystem():
        return None
    root = Path(tempfile.mkdtemp(prefix="steward-tests-", dir=CANDIDATE))
    # the modes of /tmp, which it stands in for: the private PostgreSQL cluster runs as `postgres` in a folder below
    root.chmod(0o1777)
    environ[ENV] = environ["TMPDIR"] = str(root)
    tempfile.tempdir = str(root)
    return root


def release(root: Path | None, passed: bool) -> str | None:
    """Remove `root` after a run that passed; after one that failed keep it for the post-mortem and say where
    (it holds RAM until removed)."""
    if root is None or not root.exists():
        return None
    if passed:
        shutil.rmtree(root, ignore_errors=True)
        return None
    size = 0
    for path in root.rglob("*"):
        try:
            size += path.lstat().st_size if path.is_file() else 0
        except OSError:  # removed while we counted
            pass
    return f"the failed run's temporary files are kept in RAM at {root} ({size / 1e9:.1f} GB): rm -rf it when done"
