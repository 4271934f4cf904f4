"""Entry point for ``lizardctl`` and ``python -m lizardctl``.

Usage errors from the parser become one ``Error:`` line and exit 2, like the tool's own.
Global options may come anywhere on the line: they are moved in front of the command.
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Sequence
from typing import Any

import typer
import typer.main

from lizardctl.commands._runtime import humane_help
from lizardctl.commands.app import app
from lizardctl.core.output import printable

USAGE_EXIT = 2


@functools.cache
def root_command() -> Any:
    """The Click command tree of ``app``, built once per process and shared by hoisting and
    parsing. Typer builds it from every command's signature, evaluating their type hints:
    50-80 ms of CPU on a 2-core VM, which every command paid twice before."""
    return humane_help(typer.main.get_command(app))


def _options(command: Any) -> dict[str, Any]:
    """Every option spelling of a command, mapped to its parameter."""
    return {
        name: param
        for param in command.params
        for name in (*param.opts, *param.secondary_opts)
        if name.startswith("-")
    }


def _takes_value(param: Any) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False))


def hoist_global_options(args: list[str]) -> list[str]:
    """Move the root's options found after a command name in front of it, so that
    ``lizardctl ingest DUMP --db URL`` means ``lizardctl --db URL ingest DUMP``.

    The command line is walked as the parser will read it: a command's own option of the
    same name (``ingest --json``) stays its own, an option's value is never taken for an
    option, and nothing after ``--`` moves.
    """
    root = root_command()
    global_options = _options(root)
    command, own = root, global_options
    front: list[str] = []
    rest: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            rest += [token, *tokens]
            break
        name = token.split("=", 1)[0]
        subcommands = getattr(command, "commands", None)
        if not token.startswith("-") and subcommands and token in subcommands:
            command = subcommands[token]
            own = _options(command)
            rest.append(token)
        elif command is not root and name not in own and name in global_options:
            front.append(token)
            if "=" not in token and _takes_value(global_options[name]):
                front += list(itertools.islice(tokens, 1))
        else:
            rest.append(token)
            if name in own and "=" not in token and _takes_value(own[name]):
                rest += list(itertools.islice(tokens, 1))
    return front + rest


def main(argv: Sequence[str] | None = None) -> int:
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        result = root_command().main(args=args, prog_name="lizardctl", standalone_mode=False)
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        return 1
    except Exception as exc:
        message = getattr(exc, "format_message", None)
        if message is None:
            raise
        command = getattr(getattr(exc, "ctx", None), "command_path", "lizardctl")
        print(printable(f"Error: {message()} (see '{command} --help')"), file=sys.stderr)
        return int(getattr(exc, "exit_code", USAGE_EXIT))
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
