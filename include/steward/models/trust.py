"""Which types a skops file may hold: steward's reviewed list plus the repository's allow-list file.

skops refuses to build any type it does not trust; steward passes it an explicit list and never falls back to
pickle. Two sources, both under code review, neither writable from an engagement file:

- `BUILT_IN`: the types the estimators steward trains itself need (reviewed with this module);
- the allow-list file, `include/reviewed-skops-types.txt` (or `STEWARD_REVIEWED_TYPES`, set by the
  deployment): types a person reviewed for an adopted model (`steward onboard --model ... --trust TYPE`
  appends them with who, when and why, and the ledger records the same). An engagement file names a model
  file and its digest, never a type, so writing YAML cannot widen what is trusted (ADR 0032).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

from steward.settings import PROJECT_ROOT

# Plain data holders with no code-execution hooks on load: tree and predictor arrays, dtypes, and the
# boosters of LightGBM and XGBoost (restored from their own model text/bytes by their __setstate__).
BUILT_IN: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
)
TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
NEVER = ("builtins.eval", "builtins.exec", "builtins.compile", "builtins.__import__", "builtins.getattr",
         "builtins.open", "os.system", "subprocess.", "posix.system", "nt.system", "pickle.", "_pickle.",
         "dill.", "cloudpickle.", "marshal.", "importlib.", "runpy.", "functools.partial", "operator.attrgetter",
         "operator.methodcaller", "types.FunctionType", "types.CodeType")


class TrustError(ValueError):
    """A type cannot be added to the allow-list (not a dotted type name, or one that runs code)."""


def skops_io() -> Any:
    """`skops.io`, imported without flooding the night's log. On import skops looks every scipy ufunc up in every
    loaded module (pickle's `whichmodule`), and each Airflow module that re-exports names lazily answers the lookup
    with a DeprecatedImportWarning: 1,160 warnings, 500 KB, in the log of the first night of a process (measured,
    2026-12-06). Every steward use of skops comes through here, and the registry calls it before MLflow saves a
    model with skops, so the scan runs once, quietly."""
    import sys
    import warnings

    if "skops.io" not in sys.modules:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Airflow's DeprecatedImportWarning
            warnings.simplefilter("ignore", DeprecationWarning)
            import skops.io  # noqa: F401
    return sys.modules["skops.io"]


def allow_list_file() -> Path:
    return Path(os.environ.get("STEWARD_REVIEWED_TYPES") or PROJECT_ROOT / "include" / "reviewed-skops-types.txt")


def reviewed() -> list[str]:
    """The built-in types plus every type of the allow-list file (one per line; `#` starts a comment)."""
    extra: list[str] = []
    path = allow_list_file()
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            name = line.split("#", 1)[0].strip()
            if name and TYPE_NAME.match(name) and not refused(name) and name not in extra:
                extra.append(name)
    return [*BUILT_IN, *(t for t in extra if t not in BUILT_IN)]


def refused(name: str) -> bool:
    """Types that execute code or load other code: never trusted, whatever a file says."""
    return any(name == n or (n.endswith(".") and name.startswith(n)) for n in NEVER)


def add(types: list[str], *, who: str, why: str) -> list[str]:
    """Append types to the allow-list file with who, when and why; returns the ones that were new."""
    for name in types:
        if not TYPE_NAME.match(name):
            raise TrustError(f"--trust {name!r} is not a dotted type name (module.Class)")
        if refused(name):
            raise TrustError(f"--trust {name!r}: this type can run code when a file is loaded; steward never trusts it")
    known = set(reviewed())
    new = [t for t in dict.fromkeys(types) if t not in known]
    if new:
        path = allow_list_file()
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if text and not text.endswith("\n"):
            text += "\n"
        stamp = f"# {dt.date.today().isoformat()} {who}: {why}"
        path.write_text(text + stamp + "\n" + "".join(f"{t}\n" for t in new), encoding="utf-8")
    return new
