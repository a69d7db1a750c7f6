from __future__ import annotations

import datetime as dt
import json

import pytest

from steward import pipeline
from steward.settings import PathEscapeError, inside
from steward.sources import batches

DAY = dt.date(2026, 3, 1)


def _incoming(eng, paths, content: bytes, day=DAY):
    ref = batches.reference_path(eng, paths)
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_bytes(b"customer_id\nC0\n")
    p = batches.incoming_path(eng, paths, day)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    return p


def test_land_copies_bytes_and_keeps_source(churn, paths):
    src = _incoming(churn, paths, b"customer_id,tenure_months\nC1,3\n")
    landed = batches.land_batch(churn, paths, DAY)
    assert landed.state == "landed"
    assert open(landed.path, "rb").read() == src.read_bytes()
    assert src.exists()
    assert landed.sha256 == batches.sha256_file(src)


def test_land_is_idempotent_and_refuses_changed_source(churn, paths):
    src = _incoming(churn, paths, b"a,b\n1,2\n")
    first = batches.land_batch(churn, paths, DAY)
    assert batches.land_batch(churn, paths, DAY) == first
    src.write_bytes(b"a,b\n1,3\n")
    with pytest.raises(batches.BatchConflictError, match="refusing to rewrite"):
        batches.land_batch(churn, paths, DAY)
    assert open(first.path, "rb").read() == b"a,b\n1,2\n"  # the landed copy never changes


def test_missing_batch(churn, paths):
    with pytest.raises(batches.BatchMissingError, match="no batch for churn_telco on 2026-03-01"):
        batches.land_batch(churn, paths, DAY)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty"),
        (b"\n\n", "no columns"),
        ("customer_id,x\nC\xe9,1\n".encode("latin-1"), "not UTF-8"),
        (b'a,b\n1,2,3,4\n"unclosed\n', "cannot parse"),
    ],
    ids=["zero-bytes", "blank", "latin1", "ragged"],
)
def test_unreadable_files_raise_read_error(tmp_path, content, reason):
    p = tmp_path / "batch.csv"
    p.write_bytes(content)
    with pytest.raises(batches.BatchReadError, match=reason):
        batches.read_batch(p, "csv")


def test_quarantine_moves_file_with_reasons(churn, paths):
    raw = b"customer_id,tenure_months\nC1,-5\n"
    src = _incoming(churn, paths, raw)
    landed = pipeline.land(churn, paths, DAY)
    quality = {"failed": [{"expectation": "expect_column_values_to_be_between", "column": "tenure_months"}],
               "report_html": "x.html"}
    result = pipeline.quarantine(churn, paths, DAY, landed, quality)
    moved = batches.quarantine_dir(churn, paths, DAY) / src.name
    assert result["quarantine_path"] == str(moved)
    assert moved.read_bytes() == raw and src.read_bytes() == raw
    assert not batches.landed_path(churn, paths, DAY).exists()
    reasons = json.loads((moved.parent / "reasons.json").read_text())
    assert reasons["failed_expectations"][0]["column"] == "tenure_months"
    assert reasons["batch_sha256"] == landed["batch"]["sha256"]
    # a rerun of the date finds the quarantined copy instead of landing the file again
    again = batches.land_batch(churn, paths, DAY)
    assert again.state == "quarantined" and again.path == str(moved)


def test_land_records_read_error_instead_of_failing(churn, paths):
    _incoming(churn, paths, b"")
    result = pipeline.land(churn, paths, DAY)
    assert result["read_error"] == "file is empty (0 bytes)"
    assert result["profile"] is None


def test_paths_from_config_stay_inside_their_root(tmp_path):
    assert inside(tmp_path, "a/b.csv") == (tmp_path / "a" / "b.csv").resolve()
    with pytest.raises(PathEscapeError):
        inside(tmp_path, "../outside.csv")
    (tmp_path / "link").symlink_to("/etc")
    with pytest.raises(PathEscapeError):
        inside(tmp_path, "link/passwd")
