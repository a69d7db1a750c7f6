"""Object storage sources (ADR 0023): one object per night through Airflow's ObjectStoragePath, on `file://`
and on the S3 protocol against moto's standalone S3 server (an emulator of S3 on this machine, not AWS):
landed byte for byte, the client's objects only read, a changed object refused, a store that does not answer
retried; three nights through the real DAG with a bad one quarantined and the lineage naming the objects."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from steward import demo, pipeline
from steward.config import load_engagement
from steward.sources import batches
from tests.conftest import ENGAGEMENTS
from tests.support import logs, servers

NIGHTS = demo.night_dates(nights=3)
BAD_NIGHT = NIGHTS[1]
BUCKET = "client-exports"
SECRET = "moto-secret-not-for-logs"


def _opener(conn_id: str | None):
    from airflow.sdk import ObjectStoragePath

    return lambda url: ObjectStoragePath(url, conn_id=conn_id)


def _night_bytes(data_root: Path, day: dt.date) -> bytes:
    """The demo's churn night as the client exports it; the bad night is corrupted as the demo does."""
    frame = pd.read_csv(data_root / "churn_telco/incoming" / f"{day}.csv")
    if day == BAD_NIGHT:
        frame = demo.DEMOS["churn_telco"].corrupt(frame, np.random.default_rng(5))
    return frame.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    data_root = tmp_path_factory.mktemp("objdata")
    demo.generate("churn_telco", data_root, nights=len(NIGHTS))
    return {"data_root": data_root, "nights": {d: _night_bytes(data_root, d) for d in NIGHTS}}


@pytest.fixture(scope="module")
def s3(exports, tmp_path_factory):
    """moto's S3 server on a free port, the client's bucket holding one partition per night."""
    import boto3

    port = servers.free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc = servers.start([str(Path(sys.executable).with_name("moto_server")), "-p", str(port)], {}, log)
    try:
        servers.wait_http(f"http://127.0.0.1:{port}/moto-api/", 60, proc, log)
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="testing",
                              aws_secret_access_key=SECRET, region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for day, body in exports["nights"].items():
            client.put_object(Bucket=BUCKET, Key=f"churn/dt={day}/part-0.csv", Body=body)
        yield {"port": port, "client": client}
    finally:
        servers.stop(proc)


def _conn(port: int) -> str:
    return json.dumps({"conn_type": "aws", "login": "testing", "password": SECRET,
                       "extra": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "eu-west-1"}})


@pytest.fixture
def home(paths, exports):
    (paths.data_root / "churn_telco").mkdir(parents=True)
    shutil.copy(exports["data_root"] / "churn_telco/reference.csv", paths.data_root / "churn_telco/reference.csv")
    return paths


def _engagement_file(folder: Path, url: str, conn_id: str | None, eng_id: str = "churn_telco") -> Path:
    raw = yaml.safe_load((ENGAGEMENTS / "churn_telco.yaml").read_text())
    raw["id"] = eng_id
    raw["data"] = {"source": "object_storage", "url": url, "format": "csv", "reference": "churn_telco/reference.csv",
                   **({"conn_id": conn_id} if conn_id else {})}
    raw["business"].pop("adoption")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{eng_id}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_partitioned_file_url_lands_byte_for_byte_and_a_changed_object_is_refused(exports, tmp_path, home):
    share = tmp_path / "share"
    for day, body in exports["nights"].items():
        (share / f"dt={day}").mkdir(parents=True)
        (share / f"dt={day}" / "part-0.csv").write_bytes(body)
    eng = load_engagement(_engagement_file(tmp_path / "engagements", f"file://{share}/dt={{date}}/part-0.csv", None))
    opener = _opener(None)
    landed = pipeline.land(eng, home, NIGHTS[0], open_path=opener)
    assert Path(landed["batch"]["path"]).read_bytes() == exports["nights"][NIGHTS[0]]
    assert landed["batch"]["object"] == {"namespace": "file", "name": f"{share}/dt={NIGHTS[0]}/part-0.csv"}
    assert landed["profile"]["rows"] == 1500
    assert pipeline.land(eng, home, NIGHTS[0], open_path=opener)["batch"] == landed["batch"]  # rerun: nothing new
    (share / f"dt={NIGHTS[0]}" / "part-0.csv").write_bytes(exports["nights"][NIGHTS[2]])
    with pytest.raises(batches.BatchConflictError, match="changed after it was landed"):
        pipeline.land(eng, home, NIGHTS[0], open_path=opener)
    assert Path(landed["batch"]["path"]).read_bytes() == exports["nights"][NIGHTS[0]]  # the landed copy kept
    with pytest.raises(batches.BatchMissingError, match="dt=2026-04-01"):
        pipeline.land(eng, home, dt.date(2026, 4, 1), open_path=opener)
    assert not batches.landed_path(eng, home, dt.date(2026, 4, 1)).parent.exists()


def test_a_store_that_does_not_answer_is_an_outage_named_without_its_secret(exports, tmp_path, home, monkeypatch):
    from steward.sources.object_source import ObjectStorageUnavailableError

    # a connection id of its own: Airflow keeps one filesystem per connection id in the process
    monkeypatch.setenv("AIRFLOW_CONN_CLIENT_S3_DOWN", _conn(servers.free_port()))  # nobody listens there
    eng = load_engagement(_engagement_file(tmp_path / "engagements", f"s3://{BUCKET}/churn/dt={{date}}/part-0.csv",
                                           "client_s3_down"))
    with pytest.raises(ObjectStorageUnavailableError) as caught:
        pipeline.land(eng, home, NIGHTS[0], open_path=_opener("client_s3_down"))
    message = str(caught.value)
    assert "churn_telco: s3://client-exports/churn/dt=2026-03-01/part-0.csv (connection 'client_s3_down')" in message
    assert "unreachable" in message and SECRET not in message
    assert not batches.landed_path(eng, home, NIGHTS[0]).exists()


@pytest.mark.e2e
def test_three_nights_from_s3_through_the_real_dag(exports, s3, tmp_path, home, monkeypatch):
    """moto's S3: the bad night quarantined with the object's exact bytes, the objects untouched, the
    lineage naming s3://bucket and the key, valid against the official schema."""
    from steward.airflow.runner import run_night
    from steward.governance import lineage
    from tests.support.openlineage_schema import EventValidator

    monkeypatch.setenv("AIRFLOW_CONN_CLIENT_S3", _conn(s3["port"]))
    folder = tmp_path / "engagements"
    _engagement_file(folder, f"s3://{BUCKET}/churn/dt={{date}}/part-0.csv", "client_s3", eng_id="churn_s3")
    monkeypatch.setenv("STEWARD_ENGAGEMENTS_DIR", str(folder))
    etags = {d: s3["client"].head_object(Bucket=BUCKET, Key=f"churn/dt={d}/part-0.csv")["ETag"] for d in NIGHTS}

    with logs.caught("steward.airflow") as caught:
        runs = {day: run_night("churn_s3", day) for day in NIGHTS}
    assert {d: r["audit"]["outcome"] for d, r in runs.items()} == {NIGHTS[0]: "keep", BAD_NIGHT: "quarantine",
                                                                   NIGHTS[2]: "keep"}
    eng = load_engagement(folder / "churn_s3.yaml")
    kept = batches.quarantine_dir(eng, home, BAD_NIGHT) / f"{BAD_NIGHT}.csv"
    assert kept.read_bytes() == exports["nights"][BAD_NIGHT]  # byte for byte
    assert json.loads((kept.parent / "reasons.json").read_text())["source_path"] == \
        f"s3://{BUCKET}/churn/dt={BAD_NIGHT}/part-0.csv"
    assert {d: s3["client"].head_object(Bucket=BUCKET, Key=f"churn/dt={d}/part-0.csv")["ETag"] for d in NIGHTS} == etags

    events = lineage.read_events(home, "churn_s3")
    validator = EventValidator()
    for event in events:
        validator.validate(event)
    inputs = {(e["job"]["name"].split(".")[-1], d["namespace"], d["name"]) for e in events
              if e["eventType"] == "COMPLETE" for d in e.get("inputs") or []}
    assert ("land_batch", f"s3://{BUCKET}", f"churn/dt={NIGHTS[0]}/part-0.csv") in inputs
    assert ("validate_batch", f"s3://{BUCKET}", f"churn/dt={BAD_NIGHT}/part-0.csv") in inputs
    assert any("QUARANTINED" in line for line in caught.lines)
    assert not any(SECRET in line for line in caught.lines)
    assert SECRET not in json.dumps(events) and SECRET not in json.dumps([r["audit"] for r in runs.values()])
