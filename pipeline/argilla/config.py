"""Settings of the Argilla sync (pipeline/argilla/): the ARGILLA_* variables of pipeline/settings.py
plus the request knobs, overridable per command (--dataset, --workspace).

Argilla is optional: without ARGILLA_API_URL and ARGILLA_API_KEY every other part of the
workbench works, and the argilla commands say what to set.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from pipeline.errors import UserError
from pipeline.settings import default_of, get_settings


@dataclass(frozen=True)
class ArgillaConfig:
    api_url: str | None = None
    api_key: str | None = None
    workspace: str = default_of("argilla_workspace")
    dataset: str = default_of("argilla_dataset")
    batch_size: int = 256  # records per bulk request (the server's maximum is 500)
    retries: int = 4  # attempts per request after the first, with exponential backoff
    backoff_s: float = 1.0  # first wait; doubles each retry
    timeout_s: float = 60.0

    @classmethod
    def from_env(cls, **overrides) -> ArgillaConfig:
        settings = get_settings()
        key = settings.argilla_api_key
        values = {
            "api_url": settings.argilla_api_url,
            "api_key": key.get_secret_value() if key else None,
            "workspace": settings.argilla_workspace,
            "dataset": settings.argilla_dataset,
        }
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
