"""Validate OpenLineage events offline against the official spec, vendored in tests/schemas/openlineage-spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from steward.governance.lineage import SCHEMA_DIR
from steward.settings import PROJECT_ROOT

SPEC_DIR = PROJECT_ROOT / "tests" / "schemas" / "openlineage-spec"  # vendored, with its licence


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


class EventValidator:
    def __init__(self) -> None:
        core = _load(SPEC_DIR / "OpenLineage.json")
        self.core_id = core["$id"]
        files = {p.name: _load(p) for p in [*(SPEC_DIR / "facets").glob("*.json"), *SCHEMA_DIR.glob("*.json")]}
        self.by_name = {name: doc["$id"] for name, doc in files.items()}
        resources = [(core["$id"], Resource.from_contents(core))]
        resources += [(doc["$id"], Resource.from_contents(doc)) for doc in files.values()]
        self.registry = Registry().with_resources(resources)

    def _check(self, instance: Any, ref: str) -> None:
        jsonschema.Draft202012Validator({"$ref": ref}, registry=self.registry).validate(instance)

    def validate(self, event: dict[str, Any]) -> list[str]:
        """Validate the event and every facet in it; return the facet keys that were checked."""
        self._check(event, f"{self.core_id}#/$defs/RunEvent")
        checked = []
        for key, facet in self._facets(event):
            url = facet["_schemaURL"]
            file_name, _, fragment = url.partition("#")
            file_name = file_name.rsplit("/", 1)[-1]
            assert file_name in self.by_name, f"facet {key}: no schema file for {url}"
            self._check(facet, f"{self.by_name[file_name]}#{fragment}")
            checked.append(key)
        return checked

    @staticmethod
    def _facets(event: dict[str, Any]):
        yield from (event["run"].get("facets") or {}).items()
        yield from (event["job"].get("facets") or {}).items()
        for ds in [*(event.get("inputs") or []), *(event.get("outputs") or [])]:
            yield from (ds.get("facets") or {}).items()
            yield from (ds.get("inputFacets") or {}).items()
            yield from (ds.get("outputFacets") or {}).items()
