"""docs/operations.md's configuration reference is the Settings class, rendered."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from medmatch import config_reference
from medmatch.config_reference import Variable, environment_names, variables
from tests.deploy import files
from tests.deploy.test_compose import DAGSTER_VARIABLES, POSTGRES_VARIABLES

GUIDE = files.ROOT / "docs" / "operations.md"


def test_the_guide_shows_the_settings_as_they_are() -> None:
    text = GUIDE.read_text()
    assert config_reference.rewrite(text) == text, (
        "docs/operations.md is out of date: python -m medmatch.config_reference docs/operations.md"
    )


def test_every_setting_says_what_it_means() -> None:
    assert [v.name for v in variables() if not v.description] == []


def test_the_guide_names_every_variable_compose_and_dagster_read() -> None:
    text = GUIDE.read_text()
    others = files.referenced_variables(files.raw_compose()) | DAGSTER_VARIABLES
    assert [n for n in sorted(others | POSTGRES_VARIABLES) if f"`{n}`" not in text] == []


def test_nested_models_aliases_and_defaults_are_spelt_out() -> None:
    class Inner(BaseModel):
        depth: int = Field(3, description="how deep")
        kinds: frozenset[str] = Field(frozenset({"b", "a"}), description="which")

    class Example(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="EX_", env_nested_delimiter="__")

        url: str | None = Field(None, validation_alias="EXAMPLE_URL", description="where")
        port: int = Field(1, validation_alias=AliasChoices("PORT", "EX_PORT"), description="a | b")
        inner: Inner = Field(default_factory=Inner)
        tags: dict[str, int] = Field(default_factory=dict, description="map")
        plain: str = "x"

    assert variables(Example) == [
        Variable("EXAMPLE_URL", (), "unset", "where"),
        Variable("PORT", ("EX_PORT",), "1", "a | b"),
        Variable("EX_INNER__DEPTH", (), "3", "how deep"),
        Variable("EX_INNER__KINDS", (), '["a", "b"]', "which"),
        Variable("EX_TAGS", (), "{}", "map"),
        Variable("EX_PLAIN", (), "x", ""),
    ]
    assert environment_names(Example) >= {"PORT", "EX_PORT", "EX_INNER__DEPTH"}


def test_the_real_settings_read_what_the_readme_says() -> None:
    names = environment_names()
    assert {"DATABASE_URL", "MEDMATCH_DATABASE_URL", "OLLAMA_BASE_URL"} <= names
    assert "MEDMATCH_THRESHOLDS__AUTO_MATCH" in names
    assert "MEDMATCH_THRESHOLDS" not in names  # a nested model is its fields


def test_rewrite_replaces_only_the_marked_table(tmp_path: Path) -> None:
    doc = tmp_path / "guide.md"
    doc.write_text(f"# Guide\n{config_reference.BEGIN}\nOLD-TABLE\n{config_reference.END}\nafter\n")
    config_reference.main([str(doc)])
    text = doc.read_text()
    assert text.startswith("# Guide\n") and text.endswith(f"{config_reference.END}\nafter\n")
    assert "OLD-TABLE" not in text and "`MEDMATCH_OLLAMA_MODEL` | `medgemma` |" in text
    with pytest.raises(ValueError, match="markers"):
        config_reference.rewrite("# no table here\n")
