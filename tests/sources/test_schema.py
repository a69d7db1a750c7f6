"""Types round-trip: what onboarding infers from the reference's text is what the nightly reader reads,
whatever tonight's values look like. One test per type, each with a night that pandas alone would read
differently."""

from __future__ import annotations

import pandas as pd
import pytest

from steward.sources import schema


def _with_id(text: str) -> str:
    """Prefix an id column (a one-column CSV cannot hold an empty cell: pandas skips blank lines)."""
    header, *rows = text.split("\n")
    return "\n".join([f"id,{header}", *(f"r{i},{row}" for i, row in enumerate(rows) if i < len(rows) - 1)]) + "\n"


def _round_trip(tmp_path, reference: str, tonight: str) -> tuple[str, pd.Series, pd.Series]:
    """(type inferred from the reference, the reference column read, tonight's column read)."""
    ref, night = tmp_path / "ref.csv", tmp_path / "night.csv"
    ref.write_text(_with_id(reference))
    night.write_text(_with_id(tonight))
    kind = schema.infer_type(schema.read_raw_csv(ref)["x"])
    types = {"x": kind}
    return kind, schema.read_csv(ref, types)["x"], schema.read_csv(night, types)["x"]


def test_booleans(tmp_path):
    # tonight: all null (pandas alone: float64) and mixed case
    kind, ref, night = _round_trip(tmp_path, "x\nTrue\nFalse\ntrue\n", "x\n\n\n")
    assert kind == "boolean" and str(ref.dtype) == str(night.dtype) == "boolean"
    assert list(ref) == [True, False, True] and len(night) == 2 and night.isna().all()
    _, _, mixed = _round_trip(tmp_path, "x\nTrue\nFalse\n", "x\nTRUE\nfalse\n")
    assert list(mixed) == [True, False]


def test_integers_with_nulls(tmp_path):
    # reference with an empty cell (pandas alone: float64); tonight without (pandas alone: int64)
    kind, ref, night = _round_trip(tmp_path, "x\n1\n\n3\n", "x\n4\n5\n")
    assert kind == "integer" and str(ref.dtype) == str(night.dtype) == "Int64"
    assert ref.isna().sum() == 1 and list(night) == [4, 5]


def test_whole_numbers_written_with_a_point_stay_float(tmp_path):
    kind, _, night = _round_trip(tmp_path, "x\n129.0\n\n3.0\n", "x\n129.5\n")
    assert kind == "float" and night.dtype == "float64" and night.iloc[0] == 129.5


def test_dates(tmp_path):
    kind, ref, night = _round_trip(tmp_path, "x\n2026-01-02\n\n2026-02-28\n", "x\n2026-03-01\n")
    assert kind == "date" and ref.dtype == night.dtype == "datetime64[ns]"
    assert night.iloc[0] == pd.Timestamp("2026-03-01")


def test_timestamps_with_offsets_read_as_utc(tmp_path):
    kind, _, night = _round_trip(tmp_path, "x\n2026-01-02T10:00:00Z\n2026-01-02 11:30:00\n",
                                 "x\n2026-03-01T12:00:00+02:00\n2026-03-01T10:00:00Z\n")
    assert kind == "timestamp" and night.dtype == "datetime64[ns]"
    assert night.iloc[0] == night.iloc[1] == pd.Timestamp("2026-03-01T10:00:00")


def test_ids_keep_leading_zeros(tmp_path):
    ref = tmp_path / "ref.csv"
    ref.write_text("id,x\n00123,1\n00456,2\n")
    frame = schema.read_csv(ref, {"id": "string", "x": "integer"})
    assert list(frame["id"]) == ["00123", "00456"]


def test_high_cardinality_and_free_text_are_text(tmp_path):
    kind, _, night = _round_trip(tmp_path, "x\nN14228\nN24211\nN619AA\n", "x\nN804JB\n")
    assert kind == "string" and list(night) == ["N804JB"]
    kind, _, _ = _round_trip(tmp_path, 'x\n"late again, the customer called twice"\n"fine"\n', "x\nok\n")
    assert kind == "string"


@pytest.mark.parametrize(("kind", "text", "bad"), [
    ("integer", "x\n1\n2.5\n", "2.5"),
    ("integer", "x\n1\nthree\n", "three"),
    ("boolean", "x\nTrue\nyes\n", "yes"),
    ("date", "x\n2026-01-01\n01/02/2026\n", "01/02/2026"),
    ("timestamp", "x\n2026-01-01T10:00:00\nyesterday\n", "yesterday"),
    ("float", "x\n1.5\nn/a?\n", "n/a?"),
])
def test_a_value_that_does_not_fit_leaves_text_and_is_named(tmp_path, kind, text, bad):
    path = tmp_path / "night.csv"
    path.write_text(text)
    frame = schema.read_csv(path, {"x": kind})
    assert frame["x"].dtype == object  # left as text: the GX type check fails on it
    assert schema.mismatches(frame, {"x": kind}) == {"x": {"type": kind, "rows": 1, "examples": [bad]}}


def test_model_input_is_what_scikit_learn_accepts(tmp_path):
    frame = pd.DataFrame({"i": pd.array([1, None], dtype="Int64"), "b": pd.array([True, None], dtype="boolean")})
    out = schema.model_input(frame, ["i", "b"])
    assert out["i"].dtype == "float64" and out["b"].dtype == object and pd.isna(out["b"].iloc[1])
