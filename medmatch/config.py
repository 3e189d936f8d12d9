"""Configuration, read once from the environment (prefix MEDMATCH_)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class MatchThresholds(BaseSettings):
    """Decision thresholds on the match probability (DESIGN.md, "Decisions and confidence")."""

    model_config = SettingsConfigDict(env_prefix="MEDMATCH_")

    auto_match: float = Field(0.90, ge=0.0, le=1.0, description="at or above: auto_match")
    review: float = Field(0.65, ge=0.0, le=1.0, description="at or above: review_required")
    pair_floor: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="comparisons below this are not kept (pairs.csv, match_results) unless decided",
    )

    @model_validator(mode="after")
    def _ordered(self) -> MatchThresholds:
        if self.review > self.auto_match:
            raise ValueError("review threshold must not exceed auto_match threshold")
        return self


class AdjudicationSettings(BaseModel):
    """Which pairs reach each adjudicator (`medmatch.matching.adjudication.PairSet`)."""

    offline_pairs: frozenset[Literal["all", "review_band", "life_events"]] = Field(
        frozenset({"all"}), description="offline adjudicator: cheap, every candidate pair"
    )
    llm_pairs: frozenset[Literal["all", "review_band", "life_events"]] = Field(
        frozenset({"review_band", "life_events"}),
        description="Ollama: only pairs whose decision it could change",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDMATCH_", env_nested_delimiter="__")

    default_phone_region: str = Field("US", description="region for phones without +country")
    min_records_to_train: int = Field(
        1000, ge=10, description="the CLI trains on its input at or above this many records"
    )
    thresholds: MatchThresholds = Field(default_factory=MatchThresholds)
    ollama_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("OLLAMA_BASE_URL", "MEDMATCH_OLLAMA_BASE_URL"),
        description="a local Ollama; unset: the offline adjudicator only",
    )
    ollama_model: str = Field("medgemma", description="the Ollama model that adjudicates")
    adjudication: AdjudicationSettings = Field(default_factory=AdjudicationSettings)
    ollama_timeout_s: float = Field(20.0, gt=0, description="per request, before a retry")
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "MEDMATCH_DATABASE_URL"),
        description="PostgreSQL; unset: an embedded PostgreSQL in pg_data_dir",
    )
    pg_data_dir: str = Field(".medmatch/pg", description="the embedded PostgreSQL's data folder")
    pg_tune: bool = Field(
        True,
        description="size the embedded PostgreSQL to the machine (buffers, checkpoints);"
        " off: initdb's defaults",
    )
    source_trust: dict[str, float] = Field(
        default_factory=dict,
        description='survivorship: trust per source system, e.g. {"EHR": 3, "LAB": 1}; default 1',
    )
    lookup_max_candidates: int = Field(200, ge=1, description="candidates scored per lookup")
    training_u_workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="threads estimating the model's u (a share of the comparisons each, the"
        " same u values); unset: every core",
    )
    batch_decide_workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="forked processes for a batch run's rules and offline adjudicator (from"
        " 50K scored pairs): faster on more cores, each worker holding one chunk of pairs at a"
        " time; unset: every core",
    )
    lookup_ai_budget_s: float = Field(
        5.0, gt=0, description="time the adjudicators may take per lookup; past it: review"
    )
    api_host: str = Field("127.0.0.1", description="medmatch serve: the address to listen on")
    api_port: int = Field(8000, ge=1, le=65535, description="medmatch serve: the port")
    api_workers: int = Field(
        1,
        ge=1,
        description="medmatch serve: uvicorn worker processes (a lookup waits on PostgreSQL"
        " half its time; on 2 cores 4 workers served 8 concurrent clients best, ~200 MB each)",
    )
    api_prewarm: bool = Field(
        True,
        description="medmatch serve: read the tables a lookup searches into PostgreSQL's buffers"
        " before serving (pg_prewarm, when the server offers it), so the first lookups after"
        " a restart or a bulk load are not the slow ones",
    )
    api_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="requests with a larger body are refused (413)"
    )
    api_token_cache_s: float = Field(
        5.0,
        ge=0,
        description="a verified token is trusted this long without a query: a revocation"
        " takes effect within it (0: every request asks the database)",
    )
    landing_dir: str = Field(
        ".medmatch/landing", description="the pipeline's landing folder (*demographics* files)"
    )
    models_dir: str = Field(
        ".medmatch/models", description="the pipeline's versioned models (current.json: in use)"
    )
    batch_launcher: Literal["local", "queue"] = Field(
        "local",
        description="local: the API starts the Dagster run in a subprocess (no daemon needed); "
        "queue: submitted to the Dagster webserver's run queue, the daemon launches it",
    )
    dagster_webserver_url: str = Field(
        "http://localhost:3000", description="batch_launcher=queue: the Dagster webserver"
    )
    max_cluster_size: int = Field(
        50,
        ge=1,
        description="the pipeline's check fails when a golden record holds more records than"
        " this: a blocking or threshold blow-up, not a person",
    )
    duckdb_memory_limit: str = Field("2GB", description="DuckDB's memory bound; it spills past it")
    duckdb_temp_directory: str | None = Field(
        None, description="where DuckDB spills (default: tmp)"
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
