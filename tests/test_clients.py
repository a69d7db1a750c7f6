"""Client-level defaults (include/clients/<name>.yaml, steward.clients): inheritance, overrides, provenance, the
configuration hash and ledger history they feed, and the errors a bad client file gets."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from typer.testing import CliRunner

from steward import clients, demo
from steward.config import EngagementConfigError, config_hash, load_all, load_engagement
from steward.governance import ledger
from steward.settings import StewardPaths
from tests.conftest import ENGAGEMENTS

NORTHWIND = {
    "extends": "eu_clients",
    "client": "Northwind Telecom",
    "owner": "ana.lima@steward.example",
    "governance": {"owners": ["ana.lima@steward.example"], "retention_days": 400},
    "alerts": {"channels": [{"type": "smtp", "conn_id": "smtp_northwind", "to": ["ml-alerts@northwind.example"]}]},
}
EU_CLIENTS = {"governance": {"region": "eu-west-1"}}


def _engagement(folder, eng_id: str, **overrides) -> None:
    """A copy of churn_telco that leaves to the client file what the client file gives."""
    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    for key in ("client", "owner", "alerts"):
        raw.pop(key, None)
    for key in ("owners", "region", "retention_days"):
        raw["governance"].pop(key, None)
    raw.update(id=eng_id, client_defaults="northwind", schedule="0 2 29 2 *")
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        raw[section][key] = value
    (folder / f"{eng_id}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture
def layout(tmp_path, monkeypatch):
    engagements, client_dir = tmp_path / "engagements", tmp_path / "clients"
    engagements.mkdir()
    client_dir.mkdir()
    (client_dir / "northwind.yaml").write_text(yaml.safe_dump(NORTHWIND, sort_keys=False))
    (client_dir / "eu_clients.yaml").write_text(yaml.safe_dump(EU_CLIENTS))
    _engagement(engagements, "north_churn", **{"governance.retention_days": 730})  # overrides the client's 400
    _engagement(engagements, "north_upsell")
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(engagements))
    return engagements, client_dir


def test_two_engagements_inherit_region_and_alert_channel_one_overrides_the_retention(layout):
    engagements, client_dir = layout
    churn, upsell = (load_engagement(engagements / f"{e}.yaml") for e in ("north_churn", "north_upsell"))
    for eng in (churn, upsell):
        assert eng.governance.region == "eu-west-1"  # two levels up: northwind extends eu_clients
        assert [c.conn_id for c in eng.alerts.channels] == ["smtp_northwind"]
        assert eng.client == "Northwind Telecom"
        assert eng.governance.sensitive_attributes == ["payment_method"]  # the engagement's own
    assert (churn.governance.retention_days, upsell.governance.retention_days) == (730, 400)

    provenance = {field: source for field, _, source in clients.explain(engagements / "north_churn.yaml")}
    assert provenance["governance.region"] == "clients/eu_clients.yaml"
    assert provenance["alerts.channels"] == "clients/northwind.yaml"
    assert provenance["governance.retention_days"] == "north_churn.yaml"

    from steward.cli import app

    out = CliRunner().invoke(app, ["validate-config", str(engagements), "--explain"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "inherits clients/eu_clients.yaml, clients/northwind.yaml" in " ".join(out.output.split())  # rich wraps
    region_row = next(line for line in out.output.splitlines() if line.startswith("governance.region"))
    assert "eu-west-1" in region_row and "clients/eu_clients.yaml" in region_row


def test_a_client_file_change_changes_every_inheriting_config_hash_and_nothing_else(layout, tmp_path):
    engagements, client_dir = layout
    plain = tmp_path / "plain" / "demand_retail.yaml"  # no client defaults: the hash is the file's sha256, as before
    plain.parent.mkdir()
    plain.write_bytes((ENGAGEMENTS / "demand_retail.yaml").read_bytes())
    before = {e: config_hash(engagements / f"{e}.yaml") for e in ("north_churn", "north_upsell")}
    assert config_hash(plain) == hashlib.sha256(plain.read_bytes()).hexdigest()
    (client_dir / "eu_clients.yaml").write_text(yaml.safe_dump({"governance": {"region": "eu-central-1"}}))
    after = {e: config_hash(engagements / f"{e}.yaml") for e in ("north_churn", "north_upsell")}
    assert all(before[e] != after[e] for e in before)
    assert load_engagement(engagements / "north_upsell.yaml").governance.region == "eu-central-1"
    assert config_hash(plain) == hashlib.sha256(plain.read_bytes()).hexdigest()


@pytest.mark.e2e
def test_the_client_file_change_is_recorded_in_both_ledgers(layout, paths):
    from steward.airflow.runner import run_night

    engagements, client_dir = layout
    demo.generate("churn_telco", paths.data_root, nights=2)
    first, second = demo.night_dates(nights=2)
    for eng_id in ("north_churn", "north_upsell"):
        assert run_night(eng_id, first)["state"].endswith("success")
    channel = {"type": "smtp", "conn_id": "smtp_northwind", "to": ["oncall@northwind.example"]}
    changed = {**NORTHWIND, "alerts": {"channels": [channel]}}
    (client_dir / "northwind.yaml").write_text(yaml.safe_dump(changed, sort_keys=False))
    new_sha = hashlib.sha256((client_dir / "northwind.yaml").read_bytes()).hexdigest()
    for eng_id in ("north_churn", "north_upsell"):
        assert run_night(eng_id, second)["state"].endswith("success")

    for eng_id in ("north_churn", "north_upsell"):
        entries = ledger.read_entries(paths, eng_id)
        configs = [e["detail"] for e in entries if e["type"] == "config"]
        assert len(configs) == 2, eng_id  # the client file changed: a new configuration of this engagement
        assert [f["path"] for f in configs[1]["client_files"]] == ["clients/eu_clients.yaml", "clients/northwind.yaml"]
        assert configs[1]["client_files"][1]["sha256"] == new_sha
        assert "oncall@northwind.example" in configs[1]["client_files"][1]["text"]
        assert configs[0]["text"] == configs[1]["text"]  # the engagement file itself did not change
        runs = {e["logical_date"]: e["record"] for e in entries if e["type"] == "run"}
        assert runs[second.isoformat()]["config"]["sha256"] == configs[1]["sha256"] != configs[0]["sha256"]
        assert runs[second.isoformat()]["config"]["client_files"][1] == {"path": "clients/northwind.yaml",
                                                                        "sha256": new_sha}
        assert ledger.verify(paths, eng_id).ok


def _error(path) -> EngagementConfigError:
    with pytest.raises(EngagementConfigError) as caught:
        load_engagement(path)
    return caught.value


def test_bad_client_files_name_the_file_and_field_and_leave_other_engagements_alone(layout):
    engagements, client_dir = layout
    (engagements / "plain.yaml").write_text((ENGAGEMENTS / "churn_telco.yaml").read_text().replace(
        "id: churn_telco", "id: plain"))
    north = engagements / "north_churn.yaml"

    # a client file that does not exist
    text = north.read_text()
    north.write_text(text.replace("client_defaults: northwind", "client_defaults: southwind"))
    err = _error(north)
    assert (err.path, err.field) == (str(north), "client_defaults") and "southwind.yaml does not exist" in err.reason
    north.write_text(text)

    # a cycle
    (client_dir / "eu_clients.yaml").write_text(yaml.safe_dump({**EU_CLIENTS, "extends": "northwind"}))
    err = _error(north)
    assert err.field == "extends" and "northwind -> eu_clients -> northwind" in err.reason
    (client_dir / "eu_clients.yaml").write_text(yaml.safe_dump(EU_CLIENTS))

    # an unknown key, nested, and a field clients do not share
    for bad, field in (({"governance": {"regoin": "eu-west-1"}}, "governance.regoin"),
                       ({"features": {"x": "numeric"}}, "features")):
        (client_dir / "eu_clients.yaml").write_text(yaml.safe_dump(bad))
        err = _error(north)
        assert (err.path, err.field) == (str(client_dir / "eu_clients.yaml"), field), err

    # a bad value that came from the client file is reported against the client file
    (client_dir / "eu_clients.yaml").write_text(yaml.safe_dump({"governance": {"region": "Europe"}}))
    err = _error(north)
    assert (err.path, err.field) == (str(client_dir / "eu_clients.yaml"), "governance.region"), err

    good, errors = load_all(engagements)
    assert set(good) == {"plain"}  # the engagement without client defaults is unaffected
    assert {e.field for e in errors} == {"governance.region"} and len(errors) == 2

    from steward.cli import app

    out = CliRunner().invoke(app, ["validate-config", str(engagements)], terminal_width=200)
    assert out.exit_code == 1 and "eu_clients.yaml: field 'governance.region'" in " ".join(out.output.split())


def test_onboard_with_a_client_file_writes_only_what_the_client_file_does_not_give(layout, paths, tmp_path):
    from steward.cli import app

    engagements, _ = layout
    reference = tmp_path / "reference.csv"
    import numpy as np

    demo._churn_frame(np.random.default_rng(0), 400, 0, 0.0, False).to_csv(reference, index=False)
    out = CliRunner().invoke(app, ["onboard", "--data", str(reference), "--target", "churned", "--id", "north_new",
                                   "--client", "northwind", "--use-case", "churn"], terminal_width=200)
    assert out.exit_code == 0, out.output
    written = engagements / "north_new.yaml"
    raw = yaml.safe_load(written.read_text())
    assert raw["client_defaults"] == "northwind"
    assert "client" not in raw and "owner" not in raw and "alerts" not in raw
    assert "region" not in raw["governance"] and "owners" not in raw["governance"]
    eng = load_engagement(written)
    assert eng.client == "Northwind Telecom" and eng.governance.region == "eu-west-1"
    assert json.loads(json.dumps([c.conn_id for c in eng.alerts.channels])) == ["smtp_northwind"]
    assert StewardPaths.from_env().data_root.joinpath("north_new", "reference.csv").exists()
