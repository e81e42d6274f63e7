"""Settings read from the environment (prefix ``ARTEMIS_``): :class:`RuntimeSettings` (what every entry point
reads: grounding, the cache directory; the CLI uses it too) and the service's :class:`Settings` (or passed to
``create_app``). The only places the environment is read; the tools get plain values."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tools.describers import DescriberKind
from tools.grounding import GroundingSettings
from tools.grounding.backends import REAL_FOOTAGE_BACKEND


class RuntimeSettings(BaseSettings):
    """What every entry point (CLI, service) reads from the environment for its runtime."""

    model_config = SettingsConfigDict(env_prefix="ARTEMIS_", extra="ignore")

    grounding_backend: str = Field(
        default=REAL_FOOTAGE_BACKEND,
        description="Grounding backend (tools.grounding.available_backends): 'coco' for real footage (default), "
        "'offline' for the synthetic world's flat shapes, 'hf' with your own checkpoint.",
    )
    grounding_detector_dir: Path | None = Field(
        default=None, description="OWLv2 / Grounding DINO checkpoint directory (grounding backend 'hf')."
    )
    grounding_threshold: float = 0.3
    grounding_max_frames: int = Field(default=48, ge=1, description="Frames sampled for grounding.")
    cache_dir: Path = Field(
        default=Path.home() / ".cache" / "artemis",
        description="Root of the on-disk caches (SmolLM2's converted weights).",
    )

    def grounding_settings(self) -> GroundingSettings:
        return GroundingSettings(
            backend=self.grounding_backend,
            detector_dir=self.grounding_detector_dir,
            threshold=self.grounding_threshold,
            max_frames=self.grounding_max_frames,
        )


class Settings(RuntimeSettings):
    """Everything the service needs to start. ``ARTEMIS_DATA_DIR=/srv/artemis artemis serve`` etc."""

    data_dir: Path = Field(
        default=Path.home() / ".cache" / "artemis" / "service",
        description="Videos, frames, evidence, the metadata DB and the conversation checkpoints live here. "
        "With database_url: videos, frames and evidence only, on a path every replica shares.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="postgresql://user:password@host:5432/db: conversations, messages and LangGraph checkpoints "
        "in PostgreSQL, so several replicas may serve one data_dir. Unset: SQLite files in data_dir, one process.",
    )
    replica_id: str | None = Field(
        default=None, description="This replica's name in the running turns' leases (None: host-pid-random)."
    )
    replica_lease_s: float = Field(
        default=30.0,
        gt=0,
        description="With database_url: a running turn whose replica has not renewed its lease for this long "
        "(the replica died) shows as interrupted.",
    )
    db_pool_size: int = Field(default=8, ge=2, description="PostgreSQL connections per replica.")
    model_dir: Path | None = Field(
        default=None,
        description="Artemis model directory; None: the describer kind decides (tools.describers.choose_describer).",
    )
    describer: DescriberKind = Field(
        default="auto",
        description="auto (model_dir, else the weight-free track describer), world (model_dir, else the embedded "
        "world model, else the heuristic), model, track, heuristic or random.",
    )
    device: str | None = Field(default=None, description="torch device for the model (None: as loaded).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    planner: Literal["rule", "llm"] = "rule"
    llm: str | None = Field(
        default=None, description="'module:factory' returning a LangChain chat model (planner 'llm')."
    )
    summarizer: Literal["merge", "smollm2", "auto"] = "merge"
    max_upload_bytes: int = Field(default=512 * 2**20, gt=0)
    max_body_bytes: int = Field(
        default=2**20, gt=0, description="Largest JSON request body (every route but the video upload)."
    )
    disk_quota_bytes: int = Field(default=20 * 2**30, gt=0)
    api_key: SecretStr | None = Field(
        default=None,
        description="The admin key. Unset: keys are off (one local user sees everything). Set: every API call "
        "needs a key: this one (sees everything, creates users at POST /admin/users) or a user's (sees only "
        "its own videos and conversations).",
    )
    model_workers: str | None = Field(
        default=None,
        description="URL of the model workers (`artemis workers`: Ray Serve on GPU machines), e.g. "
        "http://head:8000/describe. Set: this replica loads no describer; every description goes there (videos "
        "by their path in the shared data_dir, which the workers mount too), batched with other conversations'. "
        "Unset: the describer runs in this process.",
    )
    model_workers_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="How long one request to the model workers may take (queue included).",
    )
    turn_threads: int = Field(
        default=1,
        ge=1,
        description="Turns this replica runs at once. More than 1 needs model_workers (the model runs there, "
        "shared by all) and database_url (PostgreSQL locks each conversation's turns).",
    )
    queue_size: int = Field(default=64, ge=1, description="Model jobs allowed to wait for the worker.")
    queue_timeout_s: float = Field(default=120.0, gt=0, description="How long a job may wait to start.")
    turn_budget_s: float | None = Field(
        default=300.0,
        gt=0,
        description="Wall-time budget of one turn once it runs; past it the turn stops (status timed_out) at "
        "its next check (between steps and describer calls). None: no budget.",
    )
    feature_cache_bytes: int = Field(default=2 * 2**30, ge=0)
    max_open_videos: int = Field(default=8, ge=1, description="Videos kept opened (decoders) at once.")
    annotate_evidence: bool = Field(default=True, description="Write annotated evidence frames per turn.")
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _turn_threads(self) -> Settings:
        if self.turn_threads > 1 and (self.model_workers is None or self.database_url is None):
            missing = [
                name
                for name, value in (
                    ("model_workers", self.model_workers),
                    ("database_url", self.database_url),
                )
                if value is None
            ]
            raise ValueError(
                f"turn_threads={self.turn_threads} needs {' and '.join(missing)}: several turns at once need "
                "remote model workers (a local describer runs one call at a time) and PostgreSQL (its lock keeps "
                "the turns of one conversation in order); set them or turn_threads=1"
            )
        if self.model_workers is not None and not self.model_workers.startswith(("http://", "https://")):
            raise ValueError(f"model_workers {self.model_workers!r} must be an http:// or https:// URL")
        return self

    @property
    def videos_dir(self) -> Path:
        return self.data_dir / "videos"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def features_dir(self) -> Path:
        return self.data_dir / "features"

    @property
    def metadata_db(self) -> Path:
        return self.data_dir / "metadata.sqlite"

    @property
    def checkpoints_db(self) -> Path:
        return self.data_dir / "checkpoints.sqlite"
