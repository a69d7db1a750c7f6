"""Evidently's report figures, drawn without plotly 5's slow path (same figures, a sixth of the CPU).

Evidently draws almost every widget of a report with `plotly.subplots.make_subplots`. Its last step applies the
grid it built to a fresh figure with `update_layout(go.Layout)`, and plotly 5 checks every property a Layout can
hold on the way: 6-8 ms a figure, two figures per column of a drift report, 9 % of a night's CPU on the monitoring
months suite (py-spy, 2026-12-05). A figure built with the same layout in its constructor takes 0.9 ms and is the
same figure (`to_dict()` equal; in the report's JSON the template now comes after the axes, nothing else moves:
tests/monitoring/test_report_figures.py). The grid depends only on make_subplots' arguments, so it is built once
per argument set and each call gets a new figure from a copy of it.

Evidently pins plotly below 6; this goes when that pin moves and plotly's own make_subplots is fast.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

_installed = False
_MAX_GRIDS = 256
_grids: dict[str, dict[str, Any]] = {}  # make_subplots' arguments (repr) -> the layout and grid it built


def _plain(value: Any) -> bool:
    """Only arguments whose repr is the whole value make a key (no object ids, no truncated arrays)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def make_subplots(*args: Any, **kwargs: Any) -> Any:
    """plotly's make_subplots, the grid built once per argument set. A call that passes its own `figure`, or an
    argument that is not plain data, goes to plotly as it is."""
    import plotly.graph_objects as go
    from plotly import subplots

    if "figure" in kwargs or not _plain(args) or not _plain(kwargs):
        return subplots.make_subplots(*args, **kwargs)
    key = repr((args, sorted(kwargs.items())))
    grid = _grids.get(key)
    if grid is None:
        figure = subplots.make_subplots(*args, **kwargs)
        if len(_grids) < _MAX_GRIDS:
            layout = {k: v for k, v in figure.layout.to_plotly_json().items() if k != "template"}
            _grids[key] = {"layout": copy.deepcopy(layout), "_grid_ref": copy.deepcopy(figure._grid_ref),
                           "_grid_str": figure._grid_str}
        return figure
    # The constructor validates the layout into objects of the new figure (nothing is shared with the cache) and
    # applies the default template, as make_subplots' own go.Figure() does. The grid is plotly's own list: copied.
    return go.Figure({"layout": grid["layout"], "_grid_ref": copy.deepcopy(grid["_grid_ref"]),
                      "_grid_str": grid["_grid_str"]})


def evidently_modules() -> list[Any]:
    """The loaded Evidently modules that draw with make_subplots (plotly's, or this module's once installed)."""
    import evidently.metrics  # noqa: F401 - loads the renderers that bind make_subplots when imported
    import evidently.presets  # noqa: F401
    from plotly import subplots

    return [module for name, module in list(sys.modules.items())
            if name.startswith("evidently.") and getattr(module, "make_subplots", None) in (subplots.make_subplots,
                                                                                             make_subplots)]


def install() -> None:
    """Point every Evidently module that draws with plotly's make_subplots at the one above. Idempotent."""
    global _installed
    if not _installed:
        for module in evidently_modules():
            module.make_subplots = make_subplots
        _installed = True
