"""Per-engagement append-only ledger: a hash chain over audit records and the artifacts they cite.

File: `<STEWARD_HOME>/ledger/<engagement>.jsonl`, one canonical JSON object per line:

    {"seq": 3, "prev": "<sha256 of line 2's bytes>", "type": "run", "engagement": ..., "logical_date": ...,
     "at": ..., "record": {...the audit record...}, "artifacts": {"<path>": "<sha256>", ...}}

`prev` of the first line is 64 zeros. A line's hash is the sha256 of its exact bytes without the
newline, so `sed -n 3p ledger.jsonl | tr -d '\\n' | sha256sum` is all an auditor needs. The latest
line's hash is also kept in `<engagement>.head` (seq + hash) so removing the tail is detected.

Signed checkpoints (ADR 0017) live beside it in `<engagement>.checkpoints.jsonl`: after each night's entry,
the head (seq + hash) signed with an Ed25519 key kept outside the state volume, or marked unsigned with the
reason. A rewrite of the whole chain recomputes every hash but cannot produce those signatures.

Writers take an exclusive `flock` on `<engagement>.lock` for read-last + append + fsync, so two runs
finishing together cannot fork the chain. Entries are never rewritten or removed (retention purges
artifacts and appends a `purge` entry; the ledger itself is never purged).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from steward.settings import StewardPaths, inside
from steward.sources.batches import sha256_file

GENESIS = "0" * 64
ENTRY_TYPES = ("run", "config", "purge", "rollback", "sla", "report", "key_rotation", "accept", "adoption", "approval", "plan",
               "incident_report")


def canonical(obj: Any) -> bytes:
    """The one serialisation that is hashed: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ledger_path(paths: StewardPaths, engagement_id: str) -> Path:
    return inside(paths.home / "ledger", f"{engagement_id}.jsonl")


def _head_path(ledger: Path) -> Path:
    return ledger.with_suffix(".head")


def artifact_key(paths: StewardPaths, path: str | Path) -> str:
    """Artifacts are cited relative to STEWARD_HOME when inside it, so a bundle can be relocated."""
    p = Path(path).resolve()
    try:
        return p.relative_to(paths.home).as_posix()
    except ValueError:
        return str(p)


def resolve_artifact(paths: StewardPaths, key: str) -> Path:
    p = Path(key)
    return p if p.is_absolute() else paths.home / p


@contextmanager
def _locked(ledger: Path) -> Iterator[None]:
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with open(ledger.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _last_line(ledger: Path) -> tuple[int, str]:
    """(seq, hash) of the last complete line; (0, GENESIS) for an empty or missing ledger."""
    if not ledger.exists() or ledger.stat().st_size == 0:
        return 0, GENESIS
    with ledger.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        block = min(size, 1 << 20)
        while True:
            fh.seek(size - block)
            data = fh.read(block)
            if not data.endswith(b"\n"):
                raise LedgerError(f"{ledger}: last line is incomplete (no newline at byte {size}); run `steward audit verify`")
            lines = data[:-1].split(b"\n")
            if len(lines) > 1 or block == size:
                last = lines[-1]
                break
            block = min(size, block * 4)
    return int(json.loads(last)["seq"]), sha256_bytes(last)


class LedgerError(RuntimeError):
    pass


def append(
    paths: StewardPaths,
    engagement_id: str,
    entry_type: str,
    *,
    logical_date: str | None = None,
    record: dict[str, Any] | None = None,
    artifacts: dict[str, str] | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one entry under the lock; artifacts maps a path to its sha256. Returns the entry + hash."""
    if entry_type not in ENTRY_TYPES:
        raise ValueError(f"unknown ledger entry type {entry_type!r}")
    ledger = ledger_path(paths, engagement_id)
    with _locked(ledger):
        seq, prev = _last_line(ledger)
        entry = {
            "seq": seq + 1,
            "prev": prev,
            "type": entry_type,
            "engagement": engagement_id,
            "logical_date": logical_date,
            "at": dt.datetime.now(dt.UTC).isoformat(),
            "record": record,
            "artifacts": dict(sorted((artifacts or {}).items())),
            "detail": detail,
        }
        line = canonical(entry)
        from steward import store

        # witnessed before it is written: the signer signs only entries the anchor saw appended (issue 32)
        store.witness_append(paths, engagement_id, entry["seq"], sha256_bytes(line), entry_type)
        with ledger.open("ab") as fh:
            fh.write(line + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        digest = sha256_bytes(line)
        head = _head_path(ledger)
        tmp = head.with_suffix(".head.tmp")
        tmp.write_text(json.dumps({"seq": entry["seq"], "hash": digest}) + "\n")
        os.replace(tmp, head)
    return {**entry, "hash": digest}


def hash_artifacts(paths: StewardPaths, files: list[str | Path]) -> dict[str, str]:
    return {artifact_key(paths, f): sha256_file(Path(f)) for f in files if f and Path(f).is_file()}


# --- verification ----------------------------------------------------------------------------------


def checkpoints_path(paths: StewardPaths, engagement_id: str) -> Path:
    return inside(paths.home / "ledger", f"{engagement_id}.checkpoints.jsonl")


def read_checkpoints(paths: StewardPaths, engagement_id: str) -> list[dict[str, Any]]:
    path = checkpoints_path(paths, engagement_id)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def checkpoint(paths: StewardPaths, engagement_id: str, key: Any | None, unsigned_reason: str | None = None
               ) -> dict[str, Any]:
    """Sign the ledger's head with `key` (an Ed25519 private key), or record why it is unsigned. Idempotent:
    a head already checkpointed the same way is not checkpointed twice (a retried export)."""
    from steward.governance import signing

    ledger = ledger_path(paths, engagement_id)
    target = checkpoints_path(paths, engagement_id)
    with _locked(ledger):
        seq, head = _last_line(ledger)
        done = read_checkpoints(paths, engagement_id)
        if done and done[-1]["seq"] == seq and done[-1]["hash"] == head and \
                ("signature" in done[-1]) == (key is not None):
            return done[-1]
        if key is not None:
            public = signing.public_line(key)
            point = {"seq": seq, "hash": head, "key": signing.fingerprint(public), "public_key": public,
                     "signature": signing.sign(key, signing.checkpoint_message(engagement_id, seq, head))}
        else:
            point = {"seq": seq, "hash": head, "unsigned": unsigned_reason or "no signing key"}
        with target.open("ab") as fh:
            fh.write(canonical(point) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
    return point


def name_next_key(paths: StewardPaths, engagement_id: str, current_public: str, next_public: str, *, reason: str,
                  actor: str) -> dict[str, Any]:
    """Append the entry naming the next signing key (export.rotate_key then signs it with the current one)."""
    from steward.governance import signing

    current, successor = (" ".join(k.split()[:2]) for k in (current_public, next_public))
    if successor == current:
        raise ValueError("the next key is the current key")
    return append(paths, engagement_id, "key_rotation", detail={
        "from_key": signing.fingerprint(current), "to_key": signing.fingerprint(successor),
        "to_public_key": successor, "reason": reason, "actor": actor})


@dataclass
class Verification:
    engagement: str
    entries: int = 0
    problems: list[str] = field(default_factory=list)
    head: str | None = None
    signed_through: int = 0  # the newest entry covered by a checkpoint whose signature verifies
    signers: list[str] = field(default_factory=list)  # fingerprints of the keys that signed
    unsigned_runs: list[int] = field(default_factory=list)  # run entries no verified signature covers yet
    unsigned: list[int] = field(default_factory=list)  # entries of any type no verified signature covers yet

    @property
    def ok(self) -> bool:
        return not self.problems


def iter_lines(ledger: Path) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, raw bytes without newline) for each line, the last one possibly unterminated."""
    offset = 0
    with ledger.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            yield number, offset, raw
            offset += len(raw)


def verify(paths: StewardPaths, engagement_id: str, *, check_artifacts: bool = True,
           trusted_keys: list[str] | None = None, anchors: list[dict[str, Any]] | None = None) -> Verification:
    """Recompute the chain and every cited artifact; report the first broken entry and why.

    Signed checkpoints are checked against `trusted_keys` (OpenSSH public key lines: the auditor's own copy)
    when given, else against the key each checkpoint names (which proves nothing against someone who can
    also rewrite the checkpoints: the caller says so). With trusted keys, a run entry that no verified
    signature covers is a problem; without, it is listed in `unsigned_runs`.

    Artifacts of an entry superseded by a later run of the same logical date, or purged by a later
    `purge` entry, are no longer on disk by design; their hashes stay in the chain as history.
    """
    result = Verification(engagement=engagement_id)
    ledger = ledger_path(paths, engagement_id)
    if not ledger.exists():
        result.problems.append(f"no ledger at {ledger}")
        return result
    entries: list[tuple[int, dict[str, Any]]] = []
    hashes: list[str] = []
    prev = GENESIS
    for number, offset, raw in iter_lines(ledger):
        where = f"{ledger.name} line {number} (byte {offset})"
        if not raw.endswith(b"\n"):
            result.problems.append(f"{where}: truncated entry: {len(raw)} bytes without a terminating newline")
            return result
        line = raw[:-1]
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            result.problems.append(f"{where}: not valid JSON at column {exc.colno} (truncated or edited): {exc.msg}")
            return result
        if canonical(entry) != line:
            result.problems.append(f"{where}: entry is not in canonical form (edited by hand?)")
            return result
        if entry.get("seq") != number:
            result.problems.append(f"{where}: seq {entry.get('seq')} where {number} was expected "
                                   "(an entry was removed, inserted or reordered)")
            return result
        if entry.get("prev") != prev:
            result.problems.append(f"{where}: prev hash {str(entry.get('prev'))[:12]}... does not match the "
                                   f"previous entry's hash {prev[:12]}... (the chain is broken here)")
            return result
        prev = sha256_bytes(line)
        hashes.append(prev)
        entries.append((number, entry))
    result.entries = len(entries)
    result.head = prev
    head_file = _head_path(ledger)
    if head_file.exists():
        head = json.loads(head_file.read_text())
        if head["seq"] != len(entries) or head["hash"] != prev:
            result.problems.append(f"{ledger.name}: head file says seq {head['seq']} / {head['hash'][:12]}..., the "
                                   f"ledger ends at seq {len(entries)} / {prev[:12]}... (entries removed from the end?)")
            return result
    points = sorted(read_checkpoints(paths, engagement_id), key=lambda p: p["seq"])
    _verify_anchors(ledger.name, points, hashes, anchors or [], result)
    if result.problems:
        return result
    _verify_checkpoints(engagement_id, ledger.name, points, entries, hashes, trusted_keys, result)
    if result.problems:
        return result
    _verify_purges(ledger.name, entries, result)
    if result.problems:
        return result
    if check_artifacts:
        _verify_artifacts(paths, ledger, entries, result)
    return result


def _verify_anchors(name: str, points: list[dict[str, Any]], hashes: list[str], anchors: list[dict[str, Any]],
                    result: Verification) -> None:
    signed_here = {(p["seq"], p["signature"]) for p in points if "signature" in p}
    for anchor in sorted(anchors, key=lambda a: a["seq"]):
        seq = int(anchor["seq"])
        actual = hashes[seq - 1] if seq <= len(hashes) else None
        if actual != anchor["hash"]:
            result.problems.append(
                f"{name} line {seq}: the history database's anchor says hash {anchor['hash']}, the ledger has "
                f"{actual or f'no entry {seq} (it ends at {len(hashes)})'}")
            return
        if anchor.get("signature") and (seq, anchor["signature"]) not in signed_here:
            result.problems.append(f"{name} line {seq}: the history database holds a signed checkpoint of this "
                                   f"entry (key {anchor.get('key')}) that the checkpoints file no longer has")
            return


def _verify_checkpoints(engagement_id: str, name: str, points: list[dict[str, Any]],
                        entries: list[tuple[int, dict[str, Any]]], hashes: list[str], trusted_keys: list[str] | None,
                        result: Verification) -> None:
    """Each checkpoint must name the hash the ledger has at its seq, and a signed one must verify."""
    from steward.governance import signing

    trusted = list(trusted_keys) if trusted_keys is not None else None
    rotations = [(n, e["detail"]["to_public_key"]) for n, e in entries if e["type"] == "key_rotation"]
    for point in points:
        seq = int(point["seq"])
        if seq > len(hashes) or hashes[seq - 1] != point["hash"]:
            actual = hashes[seq - 1][:12] + "..." if seq <= len(hashes) else "no such entry"
            result.problems.append(f"{name} line {seq}: the checkpoint {'signed' if 'signature' in point else 'recorded'} "
                                   f"for this entry says hash {point['hash'][:12]}..., the ledger has {actual} "
                                   "(the ledger was rewritten after the checkpoint)")
            return
        if "signature" not in point:
            continue
        keys = trusted if trusted is not None else [point["public_key"]]
        message = signing.checkpoint_message(engagement_id, seq, point["hash"])
        if not any(signing.verify(k, message, point["signature"]) for k in keys):
            result.problems.append(f"{name} line {seq}: the signature of this entry's checkpoint does not verify with "
                                   f"{'the trusted key(s) given' if trusted is not None else 'the key it names'} "
                                   f"(signed by {point.get('key')})")
            return
        if trusted is not None:  # a rotation this trusted signature covers: its successor is trusted from here on
            trusted += [k for n, k in rotations if n <= seq and k not in trusted]
        result.signed_through = max(result.signed_through, seq)
        if point["key"] not in result.signers:
            result.signers.append(point["key"])
    result.unsigned_runs = [n for n, e in entries if e["type"] == "run" and n > result.signed_through]
    # every entry needs the same coverage (issue 32): a purge, rollback or key rotation nobody signed is as
    # open to forgery as a night
    result.unsigned = [n for n, _ in entries if n > result.signed_through]
    if trusted_keys is not None and result.unsigned:
        first = dict(entries)[result.unsigned[0]]["type"]
        result.problems.append(f"{name} line {result.unsigned[0]}: no checkpoint signed by a trusted key covers "
                               f"this {first} entry ({len(result.unsigned)} entries unsigned)")


PURGE_REASON = re.compile(r"retention: older than (\d+) days before (\d{4}-\d{2}-\d{2})")
NIGHT_FOLDER = re.compile(r"(?:^|/)(\d{4}-\d{2}-\d{2})(?:/|$)")


def retention_in_force(config_entry: dict[str, Any] | None) -> int:
    """`governance.retention_days` of the configuration an entry was made under (the newest `config` entry
    before it: the engagement file's text, then the client files it inherits), or the default."""
    from steward.config import Governance

    default = int(Governance.model_fields["retention_days"].default)
    if config_entry is None:
        return default
    detail = config_entry["detail"]
    for text in [detail.get("text") or "", *(c.get("text") or "" for c in reversed(detail.get("client_files") or []))]:
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            continue
        days = (raw.get("governance") or {}).get("retention_days") if isinstance(raw, dict) else None
        if isinstance(days, int) and not isinstance(days, bool):
            return days
    return default


def _verify_purges(name: str, entries: list[tuple[int, dict[str, Any]]], result: Verification) -> None:
    """A purge is checked against the retention policy it claims (issue 32): the retention it names must be the
    one the configuration in force sets, its cutoff that many days before the purge, and every folder and
    file it deleted must belong to a night before that cutoff. Anything else deleted evidence early."""
    config: dict[str, Any] | None = None
    for number, entry in entries:
        if entry["type"] == "config":
            config = entry
        if entry["type"] != "purge":
            continue
        where = f"{name} line {number}"
        claim = PURGE_REASON.search(str((entry.get("detail") or {}).get("reason") or ""))
        if claim is None:
            result.problems.append(f"{where}: a purge that names no retention policy")
            return
        days, before = int(claim.group(1)), dt.date.fromisoformat(claim.group(2))
        allowed = retention_in_force(config)
        if days < allowed:
            result.problems.append(f"{where}: purge claims retention of {days} days; the configuration in force "
                                   f"keeps {allowed}")
            return
        cutoff = before - dt.timedelta(days=days)
        cited = [*entry["artifacts"], *((entry.get("detail") or {}).get("folders") or [])]
        for key in cited:
            night = NIGHT_FOLDER.search(key)
            if night is None or dt.date.fromisoformat(night.group(1)) >= cutoff:
                result.problems.append(f"{where}: purge deleted {key}, which is not older than {days} days before "
                                       f"{before} (cutoff {cutoff})")
                return


def _verify_artifacts(paths: StewardPaths, ledger: Path, entries: list[tuple[int, dict[str, Any]]],
                      result: Verification) -> None:
    latest_run: dict[str, int] = {}
    purged: dict[str, int] = {}
    for number, entry in entries:
        if entry["type"] == "run" and entry.get("logical_date"):
            latest_run[entry["logical_date"]] = number
        if entry["type"] == "purge":
            for key in entry["artifacts"]:
                purged[key] = number
    for number, entry in entries:
        if entry["type"] == "run" and latest_run.get(entry.get("logical_date")) != number:
            continue  # superseded by a rerun of the same night
        if entry["type"] == "purge":
            continue
        for key, expected in entry["artifacts"].items():
            path = resolve_artifact(paths, key)
            if not path.exists():
                if purged.get(key, 0) > number:
                    continue
                result.problems.append(f"{ledger.name} line {number}: artifact {key} is missing")
                return
            actual = sha256_file(path)
            if actual != expected:
                result.problems.append(f"{ledger.name} line {number}: artifact {key} changed: sha256 {actual[:12]}... "
                                       f"recorded {expected[:12]}...")
                return


class LedgerTamperedError(RuntimeError):
    """The ledger holds what steward did not append, or lost what it did: nothing is signed until an operator
    accepts it with the key (`steward audit accept`)."""

    def __init__(self, engagement_id: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{engagement_id}: the ledger is not signed: " + "; ".join(problems)
                         + f". Inspect it, then `steward audit accept {engagement_id} --reason ...`")


def unwitnessed(paths: StewardPaths, engagement_id: str) -> list[str]:
    """What forbids signing the head: a broken chain, an entry after the last signed checkpoint that the
    anchor did not see appended (or saw with another hash), or an entry the anchor saw that the ledger no
    longer holds (cut back). [] when the head may be signed."""
    from steward import store

    heads = store.heads_of(paths, engagement_id)
    checked = verify(paths, engagement_id, check_artifacts=False, anchors=heads)
    if checked.problems:
        return checked.problems
    since = max((h["seq"] for h in heads if h.get("signature")), default=0)
    seen = store.witnessed(paths, engagement_id)
    problems = []
    count = 0
    for count, (_, _, raw) in enumerate(iter_lines(ledger_path(paths, engagement_id)), start=1):
        if count <= since:
            continue
        entry, digest = json.loads(raw), sha256_bytes(raw[:-1])
        witness = seen.get(count)
        if witness is None or witness["hash"] != digest:
            problems.append(f"entry {count} ({entry['type']}{' ' + entry['logical_date'] if entry.get('logical_date') else ''}, "
                            f"{digest[:12]}…) was not appended by steward" + ("" if witness is None else
                                                                           f" (it appended {witness['hash'][:12]}…)"))
    cut = sorted(s for s in seen if s > count)
    if cut:
        problems.append(f"the anchor saw entries {cut[0]}..{cut[-1]} appended; the ledger ends at {count} (cut back)")
    return problems


def accept(paths: StewardPaths, engagement_id: str, *, reason: str, actor: str) -> dict[str, Any]:
    """The operator's signed way out (issue 32): an `accept` entry naming what was found; the entries it names
    are witnessed as accepted, entries the ledger lost are forgotten, and the caller signs the head."""
    from steward import store

    found = unwitnessed(paths, engagement_id)
    if not found:
        raise ValueError("nothing to accept: every entry since the last signed checkpoint was appended by steward")
    if not verify(paths, engagement_id, check_artifacts=False).ok:
        raise ValueError("the chain itself is broken: " + "; ".join(found) + " (restore the ledger first)")
    seen = store.witnessed(paths, engagement_id)
    lines = [(n, sha256_bytes(raw[:-1]), json.loads(raw)["type"]) for n, _, raw in iter_lines(ledger_path(paths, engagement_id))]
    for seq, digest, entry_type in lines:
        if seq not in seen or seen[seq]["hash"] != digest:
            store.witness_append(paths, engagement_id, seq, digest, entry_type, state="accepted")
    with store.transaction(paths) as conn:
        conn.execute(store.delete(store.ledger_appends).where(store.ledger_appends.c.engagement == engagement_id,
                                                              store.ledger_appends.c.seq > len(lines)))
    return append(paths, engagement_id, "accept", detail={"found": found, "reason": reason, "actor": actor})


def read_entries(paths: StewardPaths, engagement_id: str) -> list[dict[str, Any]]:
    ledger = ledger_path(paths, engagement_id)
    if not ledger.exists():
        return []
    return [json.loads(line) for line in ledger.read_bytes().splitlines() if line.strip()]
