"""Evidently's figures from steward's make_subplots are plotly's figures (report_figures.py), only cheaper."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly import subplots

from steward.monitoring import report_figures

# The argument sets Evidently 0.7's renderers pass (evidently/legacy/utils/visualizations.py and the metrics).
EVIDENTLY_GRIDS = [
    ((), {"rows": 1, "cols": 1}),
    ((), {"rows": 1, "cols": 2, "shared_yaxes": True, "subplot_titles": ("current", "reference")}),
    ((), {"rows": 1, "cols": 2, "shared_yaxes": True}),
    ((), {"specs": [[{"secondary_y": True}]]}),
    ((), {"rows": 2, "cols": 1, "shared_xaxes": True, "vertical_spacing": 0.05}),
]


@pytest.mark.parametrize(("args", "kwargs"), EVIDENTLY_GRIDS)
def test_a_cached_grid_gives_plotlys_own_figure(args, kwargs):
    expected = subplots.make_subplots(*args, **kwargs).to_dict()
    first = report_figures.make_subplots(*args, **kwargs)  # builds the grid (plotly's path)
    second = report_figures.make_subplots(*args, **kwargs)  # from the cache
    assert repr((args, sorted(kwargs.items()))) in report_figures._grids
    assert first.to_dict() == expected
    assert second.to_dict() == expected
    # a trace placed by row and column lands on the same axes as in plotly's figure
    cols = kwargs.get("cols", 1)
    plotly_figure = subplots.make_subplots(*args, **kwargs).add_trace(go.Bar(x=[1], y=[2]), row=1, col=cols)
    assert second.add_trace(go.Bar(x=[1], y=[2]), row=1, col=cols).to_dict() == plotly_figure.to_dict()


def test_figures_from_the_cache_share_nothing():
    kwargs = {"rows": 1, "cols": 2, "shared_yaxes": True, "subplot_titles": ("a", "b")}
    report_figures.make_subplots(**kwargs)
    drawn = report_figures.make_subplots(**kwargs)
    drawn.add_trace(go.Scatter(x=[1, 2], y=[3, 4]), row=1, col=2)
    drawn.update_layout(title="changed", xaxis={"title": {"text": "changed"}})
    drawn.layout.annotations[0].text = "changed"
    drawn._grid_ref[0][0] = None  # even plotly's private grid
    fresh = report_figures.make_subplots(**kwargs)
    assert fresh.to_dict() == subplots.make_subplots(**kwargs).to_dict()
    assert fresh.data == ()
    fresh.add_trace(go.Bar(x=[1], y=[2]), row=1, col=1)
    assert fresh.data[0].xaxis == "x"


def test_a_call_that_is_not_plain_data_goes_to_plotly():
    own = go.Figure()
    assert report_figures.make_subplots(rows=1, cols=1, figure=own) is own  # plotly draws into the given figure
    before = dict(report_figures._grids)
    titles = np.array(["x", "y"])  # an array's repr can be truncated: never a key
    report_figures.make_subplots(rows=1, cols=2, subplot_titles=titles)
    assert report_figures._grids == before


def _dashboards(html: str) -> list:
    """The report's widget JSON (every `var metric_... = {...};` of the HTML), random ids blanked, keys sorted."""
    decoder, found = json.JSONDecoder(), []
    for match in re.finditer(r"var (?:additional_graphs_)?metric_[0-9a-f]+ = ", html):
        value, _ = decoder.raw_decode(html, match.end())
        text = json.dumps(value, sort_keys=True)
        found.append(re.sub(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", "ID", text))
    return found


def test_an_evidently_report_draws_the_same_figures(monkeypatch):
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"id": [str(i) for i in range(400)], "amount": rng.normal(size=400),
                              "plan": rng.choice(["basic", "plus", "pro"], 400)})
    current = pd.DataFrame({"id": [str(i) for i in range(200)], "amount": rng.normal(0.4, size=200),
                            "plan": rng.choice(["basic", "pro"], 200)})
    definition = DataDefinition(id_column="id", numerical_columns=["amount"], categorical_columns=["plan"])

    def report_html() -> str:
        snapshot = Report([ValueDrift(column="amount"), ValueDrift(column="plan")]).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition))
        return snapshot.get_html_str(as_iframe=False)

    modules = report_figures.evidently_modules()
    assert any(m.__name__ == "evidently.legacy.utils.visualizations" for m in modules)
    for module in modules:
        monkeypatch.setattr(module, "make_subplots", subplots.make_subplots)
    with_plotly = _dashboards(report_html())
    report_figures._grids.clear()
    for module in modules:
        monkeypatch.setattr(module, "make_subplots", report_figures.make_subplots)
    first, second = _dashboards(report_html()), _dashboards(report_html())  # grids built, then from the cache
    assert report_figures._grids, "Evidently did not draw through the cache"
    assert with_plotly and first == with_plotly and second == with_plotly
