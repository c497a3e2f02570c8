"""Settings of the Argilla sync (pipeline/argilla/), read from the environment.

Argilla is optional: without ARGILLA_API_URL and ARGILLA_API_KEY every other part of the
workbench works, and the argilla commands say what to set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

from pipeline.errors import UserError

# Field name -> environment variable; docker-compose.yml sets the same names (tests check it).
ENV_VARS = {
    "api_url": "ARGILLA_API_URL",
    "api_key": "ARGILLA_API_KEY",
    "workspace": "ARGILLA_WORKSPACE",
    "dataset": "ARGILLA_DATASET",
}


@dataclass(frozen=True)
class ArgillaConfig:
    api_url: str | None = None
    api_key: str | None = None
    workspace: str = "rlaif"
    dataset: str = "rlaif-preferences"
    batch_size: int = 256  # records per bulk request (the server's maximum is 500)
    retries: int = 4  # attempts per request after the first, with exponential backoff
    backoff_s: float = 1.0  # first wait; doubles each retry
    timeout_s: float = 60.0

    @classmethod
    def from_env(cls, **overrides) -> ArgillaConfig:
        values = {name: os.environ[var] for name, var in ENV_VARS.items() if os.environ.get(var)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        return replace(cls(), **{k: v for k, v in values.items() if k in known})

    def require_server(self) -> ArgillaConfig:
        if not self.api_url or not self.api_key:
            raise UserError(
                "Argilla is not configured: set ARGILLA_API_URL and ARGILLA_API_KEY "
                "(`rlaif argilla serve` starts a local server and prints them)"
            )
        return self
