"""The server's typed configuration (unknown keys fail)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lmrec.data.events import EventPolicy
from lmrec.serving.auth import ApiKeys

__all__ = ["Settings"]


class Settings(BaseModel):
    """Everything `create_app` needs.

    `model_dir`: the artefact to serve at start-up. `db`: the SQLite state file;
    `store`: a Redis URL (`redis://host:port/0`) to keep the state there instead,
    shared by every worker and server pointed at it (`db` is then unused); each
    worker then applies the others' item changes and model loads every
    `follow_interval_s`.
    `api_keys`: who may call what; with no keys every protected route answers 401
    unless `allow_anonymous` (local experiments only). `model_root`: admin model
    loads and experiment variants' models must lie under it (default: the folder
    holding `model_dir`; see `admin_root`). `encoder` encodes new items and free-text
    queries: "auto" (the default) the int8 ONNX encoder the artefact carries, when it
    carries one (no torch), else none; "artifact" the same but an artefact without one
    is refused; "minilm" the packaged sentence encoder on torch (the `text` extra);
    "none" leaves new items unscored (an encoder passed to `create_app` wins over all).
    `event_policy`: which stored events make up a user's history (and what each
    weighs); None (the default) uses the one the artefact served at start-up was
    trained with (its manifest's `event_policy`), so offline and online agree.
    `experiment_holdout`: the share of units kept out of every experiment (a
    global holdout that always sees the default pipeline). `event_future_s`: how far
    ahead of the server's clock an event's timestamp may be (clock skew); later ones
    are refused, since they would pin the user's history until that date.
    `metrics_public` False puts `/metrics` behind the admin scope; `docs` False
    serves no `/docs`, `/redoc` or `/openapi.json`. `trusted_model_classes`: strategy classes (`module:Class`) beyond lmrec's own that
    artefacts may name. `reports_dir`: a folder of HTML reports (`lmrec evaluate`,
    `tune`, `simulate` and `experiments report` write them) that read keys may list
    and read under `/v1/reports`, nothing outside it; None serves none. `ui` False
    serves no dashboard at `/ui`. `ranking_batch`: how many waiting recommendation
    requests the ranking thread ranks together (1 ranks one at a time; see
    `lmrec.serving.batching`). `native_threads`: BLAS/OpenMP threads per server
    process (capped at its share of the cores; see `workers.limit_native_threads`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_dir: Path
    db: Path
    store: str | None = None
    follow_interval_s: float = Field(default=0.1, gt=0)
    api_keys: ApiKeys = ApiKeys()
    allow_anonymous: bool = False
    model_root: Path | None = None
    encoder: Literal["auto", "artifact", "minilm", "none"] = "auto"
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    body_timeout_s: float = Field(default=10.0, gt=0)
    max_batch: int = Field(default=1000, gt=0)
    max_k: int = Field(default=500, gt=0)
    ranking_batch: int = Field(default=8, ge=1, le=64)
    native_threads: int = Field(default=1, ge=1, le=256)
    history_limit: int = Field(default=200, gt=0)
    metrics_public: bool = True
    docs: bool = True
    event_policy: EventPolicy | None = None
    experiment_holdout: float = Field(default=0.0, ge=0.0, lt=1.0)
    event_future_s: float = Field(default=600.0, ge=0.0)
    trusted_model_classes: tuple[str, ...] = ()
    reports_dir: Path | None = None
    ui: bool = True

    @property
    def state_location(self) -> str | Path:
        """Where the state store is: the Redis URL, or else the SQLite file."""
        return self.store if self.store is not None else self.db

    @property
    def admin_root(self) -> Path:
        """The folder every artefact loaded after start-up must lie under."""
        return self.model_root if self.model_root is not None else self.model_dir.resolve().parent
