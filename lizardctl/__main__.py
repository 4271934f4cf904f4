"""Entry point for ``lizardctl`` and ``python -m lizardctl``.

Usage errors from the parser become one ``Error:`` line and exit 2, like the tool's own.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from lizardctl.commands._runtime import humane_help
from lizardctl.commands.app import app
from lizardctl.core.output import printable

USAGE_EXIT = 2


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = humane_help(typer.main.get_command(app))
        result = command.main(args=args, prog_name="lizardctl", standalone_mode=False)
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
