"""The deployment files, read as Docker reads them: compose interpolated, Dockerfiles parsed.

Docker has no engine on our machines, so the deploy tests check these files statically.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILES = (DOCKER / "Dockerfile", DOCKER / "Dockerfile.worker")
# What the tests put where an operator puts a secret.
TEST_SECRETS = {"POSTGRES_PASSWORD": "test0secret"}

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class MissingVariable(ValueError):
    pass


def env_example() -> dict[str, str]:
    """KEY=value lines of docker/.env.example (commented-out ones are documentation only)."""
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _matches(doc: dict) -> list[re.Match[str]]:
    return [m for text in _strings(doc) for m in _VARIABLE.finditer(text) if m["name"]]


def referenced_variables(doc: dict) -> set[str]:
    return {m["name"] for m in _matches(doc)}


def required_variables(doc: dict) -> set[str]:
    """Variables compose refuses to run without (${X:?message} or ${X?message})."""
    return {m["name"] for m in _matches(doc) if m["op"] and "?" in m["op"]}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ${X}, ${X:-default}, ${X-default}, ${X:?err}, ${X?err}, $$."""

    def one(m: re.Match[str]) -> str:
        if m[0] == "$$":
            return "$"
        name, op, arg = m["name"], m["op"] or "", m["arg"] or ""
        value = env.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        if op.endswith("-") and unset:
            return arg
        return value or ""

    return _VARIABLE.sub(one, text)


def _interpolated(node: object, env: dict[str, str]) -> object:
    if isinstance(node, dict):
        return {k: _interpolated(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolated(v, env) for v in node]
    return interpolate(node, env) if isinstance(node, str) else node


def compose(env: dict[str, str] | None = None) -> dict:
    """docker-compose.yml as compose sees it with .env.example (+ the test secrets) in .env:
    YAML anchors and merge keys resolved, then every string value interpolated."""
    values = env if env is not None else env_example() | TEST_SECRETS
    return _interpolated(raw_compose(), values)  # type: ignore[return-value]


def our_services(doc: dict) -> dict[str, dict]:
    """The services that run MedMatch's own images."""
    return {
        name: svc
        for name, svc in doc["services"].items()
        if svc["image"].split(":")[0] in ("medmatch-api", "medmatch-worker")
    }


def argv_lists(command: list[str]) -> list[list[str]]:
    """The programs a command runs: `sh -c "a && b"` is two."""
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, parts = [], []
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") and not parts:
            continue
        if line.rstrip().endswith("\\"):
            parts.append(line.rstrip()[:-1])
            continue
        parts.append(line)
        text = " ".join(p.strip() for p in parts).strip()
        parts = []
        if text:
            keyword, _, rest = text.partition(" ")
            joined.append((keyword.upper(), rest.strip()))
    return joined


def exec_form(arguments: str) -> list[str]:
    """The JSON array of CMD/HEALTHCHECK CMD/ENTRYPOINT (shell form is not used here)."""
    return json.loads(arguments[arguments.index("[") :])


def dockerfile_env(path: Path) -> dict[str, str]:
    """ENV of the final stage (what the running container sees)."""
    instructions = dockerfile_instructions(path)
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    found = {}
    for keyword, rest in instructions[last_from:]:
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                found[key] = value
    return found
