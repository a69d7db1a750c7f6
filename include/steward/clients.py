"""Client-level defaults: what every engagement of one client shares, in `include/clients/<name>.yaml`.

An engagement file names its client file with `client_defaults: <name>`; a client file may name a more
general one with `extends: <name>` (a group of clients sharing a region, say). Values merge field by field,
most general first, the engagement file last: a mapping merges key by key, anything else (a list, a number)
is replaced whole. Only the fields clients share may appear in a client file (CLIENT_FIELDS), checked
key by key, so a typo is an error naming the client file and the field.

Light on purpose, like steward.config: the DAG factory reads client files at parse time.
"""

from __future__ import annotations

import copy
import hashlib
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from steward.config import SAFE_ID, Engagement, EngagementConfigError, read_mapping
from steward.settings import PROJECT_ROOT

# What clients share: display name, owner, schedule window, governance (owners, region, retention, sensitive
# attributes), alert channels (their connection ids), where tasks run, service levels and responses.
CLIENT_FIELDS = ("client", "owner", "schedule", "governance", "alerts", "execution", "sla", "responses")
MAX_DEPTH = 8  # client files extending client files


@dataclass(frozen=True)
class ConfigSource:
    """One file an engagement's configuration is made of."""

    name: str  # file name, as the ledger and the bundle show it
    path: Path
    sha256: str
    text: str


def clients_dir(engagement_path: Path) -> Path:
    """`STEWARD_CLIENTS_DIR`, else `clients/` beside the engagements folder (include/clients)."""
    return Path(os.environ.get("STEWARD_CLIENTS_DIR") or engagement_path.parent.parent / "clients")


SHIPPED_CLIENTS = PROJECT_ROOT / "include" / "clients"


def client_file(engagement_path: Path, name: str) -> Path:
    """Where client file `name` is read from: the clients folder beside the engagements; when that folder does
    not hold it (an engagements folder kept elsewhere, a scratch copy of a shipped engagement) and no
    STEWARD_CLIENTS_DIR is set, the repository's own include/clients. The ledger's config entry names the file
    that was used and its hash, so the fallback is visible (ADR 0021)."""
    path = clients_dir(engagement_path) / f"{name}.yaml"
    if not path.is_file() and not os.environ.get("STEWARD_CLIENTS_DIR") and (SHIPPED_CLIENTS / f"{name}.yaml").is_file():
        return SHIPPED_CLIENTS / f"{name}.yaml"
    return path


def _chain(engagement_path: Path, name: Any) -> list[tuple[Path, dict[str, Any], bytes]]:
    """The client file `name` and every file it extends, most general first."""
    files: list[tuple[Path, dict[str, Any], bytes]] = []
    seen: list[str] = []
    referrer, field = engagement_path, "client_defaults"
    while name is not None:
        if not isinstance(name, str) or not SAFE_ID.match(name):
            raise EngagementConfigError(referrer, field, f"{name!r} is not a client file name (^[a-z][a-z0-9_]{{1,62}}$)")
        if name in seen:
            raise EngagementConfigError(referrer, field, f"cycle of client files: {' -> '.join([*seen, name])}")
        if len(seen) == MAX_DEPTH:
            raise EngagementConfigError(referrer, field, f"more than {MAX_DEPTH} client files extend each other")
        path = client_file(engagement_path, name)
        if not path.is_file():
            raise EngagementConfigError(referrer, field, f"client file {path} does not exist")
        raw, raw_bytes = read_mapping(path)
        _check_fields(path, raw)
        seen.append(name)
        files.append((path, raw, raw_bytes))
        referrer, field, name = path, "extends", raw.get("extends")
    return list(reversed(files))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (also inside `X | None`), else None."""
    candidates = typing.get_args(annotation) or (annotation,)
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def _check_fields(path: Path, raw: dict[str, Any]) -> None:
    for key, value in raw.items():
        if key == "extends":
            continue
        if key not in CLIENT_FIELDS:
            raise EngagementConfigError(path, key, f"is not a client-level field (allowed: extends, {', '.join(CLIENT_FIELDS)})")
        _check_keys(path, key, value, _model_of(Engagement.model_fields[key].annotation))


def _check_keys(path: Path, prefix: str, value: Any, model: type[BaseModel] | None) -> None:
    """Every key of a mapping must be a field of the model it fills (values are checked after the merge)."""
    if model is None or not isinstance(value, dict):
        return
    known = {name: f for name, f in model.model_fields.items()} | {
        f.alias: f for f in model.model_fields.values() if f.alias}
    for key, sub in value.items():
        if key not in known:
            raise EngagementConfigError(path, f"{prefix}.{key}", f"unknown key (allowed: {', '.join(model.model_fields)})")
        _check_keys(path, f"{prefix}.{key}", sub, _model_of(known[key].annotation))


def _merge(into: dict[str, Any], values: dict[str, Any], origin: dict[str, Path], source: Path, prefix: str) -> None:
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, origin, source, f"{dotted}.")
            continue
        for stale in [p for p in origin if p == dotted or p.startswith(f"{dotted}.")]:
            del origin[stale]
        into[key] = copy.deepcopy(value)
        _mark(value, origin, source, dotted)


def _mark(value: Any, origin: dict[str, Path], source: Path, dotted: str) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _mark(sub, origin, source, f"{dotted}.{key}")
    else:
        origin[dotted] = source


def resolve(engagement_path: Path, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Path]]:
    """The engagement's fields with its client defaults merged in, and the file each value came from
    (dotted field -> path)."""
    layers = [(path, {k: v for k, v in values.items() if k != "extends"})
              for path, values, _ in (_chain(engagement_path, raw["client_defaults"]) if "client_defaults" in raw else [])]
    merged: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    for path, values in [*layers, (engagement_path, raw)]:
        _merge(merged, values, origin, path, "")
    return merged, origin


def source_of(field: str, origin: dict[str, Path], default: Path) -> Path:
    """The file that gave `field` (or the closest enclosing field) its value."""
    parts = field.split(".")
    for n in range(len(parts), 0, -1):
        found = origin.get(".".join(parts[:n]))
        if found is not None:
            return found
    inner = [p for d, p in origin.items() if d.startswith(f"{field}.")]
    return inner[0] if inner and all(p == inner[0] for p in inner) else default


def config_sources(engagement_path: Path) -> list[ConfigSource]:
    """The engagement file and the client files it inherits from (most general first, the engagement last)."""
    raw, raw_bytes = read_mapping(engagement_path)
    files = _chain(engagement_path, raw["client_defaults"]) if "client_defaults" in raw else []
    return [ConfigSource(name=(f"clients/{p.name}" if p != engagement_path else p.name), path=p,
                         sha256=hashlib.sha256(b).hexdigest(), text=b.decode("utf-8"))
            for p, _, b in [*files, (engagement_path, raw, raw_bytes)]]


def explain(engagement_path: Path) -> list[tuple[str, Any, str]]:
    """Every merged value with the file it came from: (dotted field, value, file name), sorted by field."""
    raw, _ = read_mapping(engagement_path)
    merged, origin = resolve(engagement_path, raw)
    rows = [(dotted, _value_at(merged, dotted), path.name if path == engagement_path else f"clients/{path.name}")
            for dotted, path in origin.items()]
    return sorted(rows, key=lambda r: r[0])


def _value_at(merged: dict[str, Any], dotted: str) -> Any:
    value: Any = merged
    for part in dotted.split("."):
        value = value[part]
    return value


def inherited_values(engagement_path: Path, name: str) -> dict[str, Any]:
    """What the client file `name` (and those it extends) would give an engagement at `engagement_path`:
    dotted field -> value. Raises EngagementConfigError like load_engagement for a bad client file."""
    merged, origin = resolve(engagement_path, {"client_defaults": name})
    return {dotted: _value_at(merged, dotted) for dotted in origin if dotted != "client_defaults"}
