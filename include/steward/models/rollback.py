"""Roll the champion back to an earlier registered version, with the reason written to the ledger.

One code path for people (`steward model rollback`) and, later, for automatic rollback. The restored
version is tagged `steward.restored_for` (the day), so every later night starts from it
(`registry.champion_for_night` takes the latest promotion *or* restore before the night).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from steward.config import Engagement
from steward.governance import ledger
from steward.models import registry
from steward.settings import StewardPaths


class RollbackError(ValueError):
    """The rollback cannot be done as asked; nothing was changed."""


ADOPTED = registry.ADOPTED  # `--to adopted`: the version adopted at onboarding (ADR 0032)


def rollback(eng: Engagement, paths: StewardPaths, *, reason: str, to_version: int | str | None = None,
             actor: str = "cli", today: dt.date | None = None) -> dict[str, Any]:
    if not reason.strip():
        raise RollbackError("a rollback needs a --reason (it goes into the ledger)")
    c = registry.client(paths)
    current = registry.get_alias(c, eng, registry.CHAMPION)
    if current is None:
        raise RollbackError(f"{eng.id} has no champion to roll back")
    if to_version == ADOPTED:
        adopted = registry.get_alias(c, eng, registry.ADOPTED)
        if adopted is None:
            raise RollbackError(f"{eng.id} adopted no model (steward onboard --model); pass --to VERSION")
        to_version = adopted.version
    assert to_version is None or isinstance(to_version, int)
    if to_version is None:
        to_version = previous_version(c, eng, current)
        if to_version is None:
            raise RollbackError(f"{eng.id} v{current.version} replaced no earlier champion; pass --to VERSION")
    if to_version == current.version:
        raise RollbackError(f"v{to_version} is already the champion of {eng.id}")
    from mlflow.exceptions import MlflowException

    try:
        target = registry.get_version(c, eng, to_version)
    except MlflowException:
        raise RollbackError(f"{eng.registered_model_name} has no version {to_version}") from None
    day = (today or dt.date.today()).isoformat()
    registry.tag_version(c, eng, target.version, {registry.RESTORED_FOR_TAG: day})
    registry.set_alias(c, eng, registry.PREVIOUS_CHAMPION, current.version)
    registry.set_alias(c, eng, registry.CHAMPION, target.version)
    entry = ledger.append(paths, eng.id, "rollback", logical_date=day, detail={
        "from_version": current.version, "to_version": target.version, "reason": reason.strip(), "actor": actor,
        "registered_model": eng.registered_model_name})
    from steward.operations import status

    status.amend_row(paths, eng.id, champion_version=target.version, champion_promoted_at=day)
    return {"from": current.version, "to": target.version, "ledger_seq": entry["seq"], "ledger_hash": entry["hash"]}


def previous_version(c: Any, eng: Engagement, current: registry.ModelRef) -> int | None:
    """The champion before `current`: the previous_champion alias, else the version `current` replaced."""
    previous = registry.get_alias(c, eng, registry.PREVIOUS_CHAMPION)
    if previous is not None and previous.version != current.version:
        return previous.version
    replaced = current.tags.get(registry.REPLACED_TAG)
    return int(replaced) if replaced else None
