"""steward's Airflow plugin: the Engagements page in the Airflow 3 UI.

The FastAPI app is mounted by the API server under /steward (behind Airflow authentication); the
external view adds "Engagements" to the UI navigation and embeds the page.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from steward.airflow.ui import create_app


class StewardPlugin(AirflowPlugin):
    name = "steward"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/steward", "name": "steward engagements"}]
    external_views = [
        {
            "name": "Engagements",
            "href": "/steward/engagements",
            "destination": "nav",
            "url_route": "steward-engagements",
            "category": "browse",
        }
    ]
