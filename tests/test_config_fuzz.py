"""Fuzzing the engagement loader (hypothesis): whatever the file holds, the loader returns a valid
Engagement or raises EngagementConfigError naming the file and a field. Nothing else escapes."""

from __future__ import annotations

import copy
import string
import time

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steward.config import Engagement, EngagementConfigError, load_engagement
from tests.conftest import ENGAGEMENTS

VALID = yaml.safe_load((ENGAGEMENTS / "prepaid_churn.yaml").read_text())
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["../etc/passwd", "/abs/path", "{date}", "", "  ", "x" * 300,
                                                           "ridge", "roc_auc", "rollback", "2026-13-40"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(string.ascii_lowercase + "_", max_size=12),
                                                                       inner, max_size=4)), max_leaves=12)


def _paths(tree, prefix=()):
    """Every key path in the valid engagement, to pick a place to mutate."""
    out = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.append((*prefix, k))
            out.extend(_paths(v, (*prefix, k)))
    return out


PATHS = _paths(VALID)


def _check(path, text_or_bytes) -> None:
    if isinstance(text_or_bytes, bytes):
        path.write_bytes(text_or_bytes)
    else:
        path.write_text(text_or_bytes, encoding="utf-8")
    try:
        eng = load_engagement(path)
    except EngagementConfigError as exc:
        assert str(path) in str(exc) and exc.field, exc
        return
    assert isinstance(eng, Engagement) and eng.id == path.stem
    assert Engagement.model_validate(eng.model_dump()) == eng


@FUZZ
@given(where=st.sampled_from(PATHS), value=values, action=st.sampled_from(["replace", "delete", "add_unknown"]))
def test_mutated_engagement_files_load_or_name_the_field(tmp_path, where, value, action):
    raw = copy.deepcopy(VALID)
    parent = raw
    for key in where[:-1]:
        parent = parent[key]
    if action == "replace":
        parent[where[-1]] = value
    elif action == "delete":
        del parent[where[-1]]
    else:
        parent["unexpected_" + where[-1]] = value
    _check(tmp_path / "prepaid_churn.yaml", yaml.safe_dump(raw, allow_unicode=True))


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_arbitrary_bytes_and_text_never_escape_as_another_error(tmp_path, data):
    _check(tmp_path / "prepaid_churn.yaml", data)


@FUZZ
@given(depth=st.integers(1, 60), width=st.integers(1, 9))
def test_alias_bombs_and_deep_nesting_are_refused_quickly(tmp_path, depth, width):
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, depth)]
    for text in ("\n".join(lines), "x: " + "[" * depth * 10 + "]" * depth * 10):
        started = time.process_time()
        _check(tmp_path / "prepaid_churn.yaml", text)
        # 9^60 aliased nodes would never finish expanding: refused before expansion, well under a second of
        # this process's CPU (CPU time, not wall time: a busy CI machine must not fail it)
        assert time.process_time() - started < 2.0, (depth, width)
