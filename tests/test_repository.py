"""The repository stands alone and tracks only sources: a newcomer's clone has nothing beside it."""

from __future__ import annotations

import re
import subprocess

from steward.settings import PROJECT_ROOT

GENERATED = re.compile(r"(^|/)(mlruns|mlartifacts|\.steward|test-artifacts|__pycache__)(/|$)")


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_no_generated_output_is_tracked():
    files = _tracked()
    assert len(files) > 50  # the listing works (a positive control for the empty result below)
    assert [f for f in files if GENERATED.search(f)] == []


def test_nothing_reads_outside_the_repository():
    folder = "sha" + "red"  # the sibling folder's name, spelled in parts so this file does not match itself
    pattern = re.compile(re.escape("../" + folder) + r"|parent\s*/\s*\"" + folder + r"\"")
    offenders = []
    for name in _tracked():
        if name.endswith((".py", ".sh", ".toml", ".cfg", ".ini", ".yaml", ".yml")) or name in {"Makefile", ".ci/run"}:
            text = (PROJECT_ROOT / name).read_text(errors="replace")
            offenders += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_every_decision_record_is_in_the_index():
    folder = PROJECT_ROOT / "docs" / "decisions"
    records = sorted(p.name for p in folder.glob("[0-9][0-9][0-9][0-9]-*.md"))
    index = (folder / "README.md").read_text()
    assert len(records) >= 27  # the glob finds them (a positive control for the empty result below)
    assert [r for r in records if f"]({r})" not in index] == []


def test_every_relative_link_in_the_docs_leads_to_a_file():
    """README.md is a front door: its links (and the docs' links) must lead somewhere in the clone."""
    link = re.compile(r"\]\(([^)#:]+)(?:#[^)]*)?\)")
    pages = [n for n in _tracked() if n.endswith(".md")]
    checked, broken = 0, []
    for name in pages:
        for target in link.findall((PROJECT_ROOT / name).read_text()):
            checked += 1
            if not ((PROJECT_ROOT / name).parent / target).exists():
                broken.append(f"{name}: {target}")
    assert checked > 10 and broken == []


def test_tests_are_laid_out_like_the_package_and_slow_folders_carry_their_marker():
    """A test file sits at the top (core modules), beside its subpackage's name, or in a folder whose marker keeps
    it out of `make test-fast` (docs/testing.md): a slow file dropped anywhere else would slow the inner loop."""
    from tests.conftest import FOLDER_MARKERS, folder_markers

    package = PROJECT_ROOT / "include" / "steward"
    subpackages = {p.name for p in package.iterdir() if (p / "__init__.py").exists()} - {"airflow"}
    allowed = subpackages | set(FOLDER_MARKERS) | {"dags"}
    folders = {p.relative_to(PROJECT_ROOT / "tests").parts[0]
               for p in (PROJECT_ROOT / "tests").rglob("test_*.py") if p.parent != PROJECT_ROOT / "tests"}
    assert folders - {"schemas"} <= allowed, f"test folders outside the layout: {sorted(folders - allowed)}"
    assert subpackages <= folders, f"subpackages without their test folder: {sorted(subpackages - folders)}"
    assert folder_markers("tests/e2e/test_nightly_dag.py::test_x") == ("e2e",)
    assert folder_markers("tests/models/test_evidence.py::test_x") == ()
    assert folder_markers("tests/test_e2e_named_file.py::test_x") == ()


def test_the_suite_runs_one_blas_and_openmp_thread_per_process():
    """The workers already fill the cores; a pool's extra threads only spin (tests/conftest.py). Fails when
    numpy was loaded before the setting, or a library ignores it."""
    import numpy  # noqa: F401 - loads OpenBLAS
    import sklearn.ensemble  # noqa: F401 - loads OpenMP
    from threadpoolctl import threadpool_info

    pools = threadpool_info()
    assert {p["user_api"] for p in pools} >= {"blas", "openmp"}, pools
    assert all(p["num_threads"] == 1 for p in pools), pools
