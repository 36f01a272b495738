"""``tests.apps.api_worker:app``: the API test app, on ``$CORRAL_BROKER_URL``, for workers
and the CLI (which import an app by name)."""

from __future__ import annotations

import os

from tests.apps.api_app import build

app = build(os.environ["CORRAL_BROKER_URL"]).app
add = app.get_task("tests.apps.api_app.add")
