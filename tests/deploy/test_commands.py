"""Every command the containers run exists, with the options given, in what the images install.

Each command line is parsed by the real click command behind it (typer's for `medmatch`, the
console-script entry points for the Dagster CLIs), as far as parsing goes: subcommands,
option names, their types and required options; nothing is invoked.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import click
import pytest
import typer

from medmatch.cli import app
from tests.deploy import files

# Commands the API issue (#7) adds; the compose file already runs them. Once one exists, the
# test below says to drop it from here.
AWAITING_COMMANDS: set[tuple[str, str]] = set()
# Programs of the base image, checked for what they are, not for their options.
INTERPRETERS = {"python", "sh"}


class CommandError(Exception):
    """click's UsageError (typer vendors its own click: its errors are other classes)."""


def click_command(program: str):  # type: ignore[no-untyped-def]
    if program == "medmatch":
        return typer.main.get_command(app)
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == program]
    # Dagster's entry points are main() functions wrapping the module's click group `cli`
    command = getattr(importlib.import_module(script.module), "cli", None) or script.load()
    assert isinstance(command, click.Command), program
    return command


def image_paths() -> dict[str, str]:
    """Files the Dockerfiles COPY into the images: image path -> the repository's file."""
    found = {}
    for dockerfile in files.DOCKERFILES:
        for keyword, rest in files.dockerfile_instructions(dockerfile):
            *sources, dest = rest.split()
            if keyword == "COPY" and dest.endswith("/") and not rest.startswith("--"):
                found |= {
                    dest + source.rsplit("/", 1)[-1]: str(files.ROOT / source) for source in sources
                }
    return found


def parse(argv: list[str]) -> list[str]:
    """The subcommand path of argv; raises CommandError when argv would not run."""
    paths = image_paths()
    args = [paths.get(a, a) for a in argv[1:]]
    command, path, parent = click_command(argv[0]), [argv[0]], None
    try:
        while True:
            ctx = command.make_context(path[-1], args, parent=parent)
            if not hasattr(command, "resolve_command"):
                return path
            rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
            name, command, args = command.resolve_command(ctx, rest)
            path.append(name)
            parent = ctx
    except Exception as error:
        if any(c.__name__ == "UsageError" for c in type(error).__mro__):
            raise CommandError(f"{' '.join(argv)}: {error}") from error
        raise


def every_command() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for name, svc in files.our_services(files.compose()).items():
        for key in ("command", "entrypoint"):
            if key in svc:
                found += [(f"{name} {key}", a) for a in files.argv_lists(svc[key])]
        test = svc.get("healthcheck", {}).get("test")
        if test and test[0] == "CMD":
            found.append((f"{name} healthcheck", test[1:]))
    for dockerfile in files.DOCKERFILES:
        for keyword, rest in files.dockerfile_instructions(dockerfile):
            if keyword in ("CMD", "HEALTHCHECK", "ENTRYPOINT"):
                found.append((f"{dockerfile.name} {keyword}", files.exec_form(rest)))
    return found


COMMANDS = every_command()


@pytest.mark.parametrize("argv", [a for _, a in COMMANDS], ids=[w for w, _ in COMMANDS])
def test_command_exists(argv: list[str]) -> None:
    if argv[0] in INTERPRETERS:
        if argv[0] == "python":
            assert argv[1] == "-c"
            compile(argv[2], "<healthcheck>", "exec")
        return
    try:
        parse(argv)
    except CommandError:
        if tuple(argv[:2]) in AWAITING_COMMANDS and not exists(argv[:2]):
            pytest.skip(f"{' '.join(argv[:2])} comes with the API (issue 7)")
        raise


def exists(argv: list[str]) -> bool:
    try:
        parse(argv)
    except CommandError:
        return False
    return True


def test_awaiting_commands_are_still_awaited() -> None:
    arrived = [argv for argv in AWAITING_COMMANDS if exists(list(argv))]
    assert not arrived, f"{arrived} exist now: remove them from AWAITING_COMMANDS"


def test_a_wrong_option_or_command_is_caught() -> None:
    with pytest.raises(CommandError):
        parse(["dagster", "code-server", "start", "--no-such-flag"])
    with pytest.raises(CommandError):
        parse(["dagster", "code-servers", "start"])
    with pytest.raises(CommandError, match="four-thousand"):
        parse(["dagster", "api", "grpc-health-check", "-p", "four-thousand"])
    with pytest.raises(CommandError):
        parse(["medmatch", "db", "upgrad"])
    assert parse(["medmatch", "db", "upgrade"]) == ["medmatch", "db", "upgrade"]
