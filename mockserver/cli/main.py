"""``telemetry-inspector``: the GUI by default, and headless subcommands.

Every error a user can cause is one line on stderr, ``telemetry-inspector COMMAND: message``
(:func:`mockserver.core.text.command_message`), and exit status 2.
The GUI is imported only when asked for (through :mod:`mockserver.cli.gui`),
so every subcommand here runs without Qt. Each command is a module of this
package with ``add_command(commands)``, which sets ``handler`` on its parser;
a handler returns the exit status. Command modules load what their handler
needs when it runs, so building the parser stays cheap: it loads neither the
server, Flask nor the journal (``tests/test_cli_imports.py``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from mockserver import __version__
from mockserver.cli import browser, diff, export, gui, import_har, run, screenshot, send, serve, verify
from mockserver.cli.options import PROG, Parser, TopParser, UsageError, add_server_options, add_shared_argument
from mockserver.core.config import DISPLAY_NAME
from mockserver.core.text import command_message

# The errors of the library a handler lets through because they are the user's to fix (a port in use, a
# journal that cannot be opened), by module and name: one line, exit 2. Looked up in sys.modules once one
# was raised, so that building the parser never loads the server: a module not loaded raised nothing.
REPORTED_ERRORS = (("mockserver.serving.server", "ServerError"), ("mockserver.storage.store", "StoreError"))

# In the order ``--help`` lists them.
COMMANDS = (serve, browser, verify, run, export, import_har, send, diff, screenshot)


def build_parser() -> TopParser:
    """The full command line, shared by ``main`` and the docs."""
    parser = TopParser(
        prog=PROG,
        description=f"{DISPLAY_NAME}: a local mock of telemetry.refine.dev that shows what a refine app sends. "
                    "Without a command, opens the window.",
        epilog="Options may come before or after the command; after it, they win. Before a command, only "
               "those it takes are accepted: the mock server options go with serve and browser, --db also "
               "with export, import, diff and screenshot, --theme light|dark with screenshot.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_server_options(parser)
    add_shared_argument(parser, parser, "--theme", choices=("system", "light", "dark"), default=None,
                        help="window colours (default: as last chosen, else the system's)")
    # dest "subcommand": run's CMD ... is args.command
    commands = parser.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=Parser)
    parser.commands = commands
    for command in COMMANDS:
        command.add_command(commands)
    return parser


# Commands that have closed everything they opened (server, journal, printer, browser profile) by the
# time their handler returns. After them the console script leaves at once: tearing down the
# interpreter (Flask, cryptography, the User-Agent tables) took 0.3-0.6 s after "stopped" on Ctrl-C.
# The window is not among them: Qt and QSettings finish their work in the normal exit.
LEAVE_AT_ONCE = frozenset({"serve", "browser"})


def main(argv: Sequence[str] | None = None, *, leave_at_once: bool = False) -> int:
    """Run the command line; returns the exit status.

    ``leave_at_once`` (the console script's) ends the process as soon as a
    command in :data:`LEAVE_AT_ONCE` returns, its output flushed.
    """
    parser = build_parser()
    command: str | None = None
    try:
        args = parser.parse_args(argv)
        command = getattr(args, "subcommand", None)
        handler = getattr(args, "handler", gui.run_window)
        status: int = handler(args)
        if leave_at_once and command in LEAVE_AT_ONCE:
            _leave(status)
        return status
    except UsageError as exc:
        print(exc.line(command), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not isinstance(exc, _reported_errors()):
            raise
        print(command_message(command, str(exc)), file=sys.stderr)
        return 2


def _reported_errors() -> tuple[type[Exception], ...]:
    """The classes of :data:`REPORTED_ERRORS` among the modules loaded so far."""
    found = (getattr(sys.modules.get(module), name, None) for module, name in REPORTED_ERRORS)
    return tuple(error for error in found if isinstance(error, type) and issubclass(error, Exception))


def _leave(status: int) -> NoReturn:
    """End the process now, with ``status``, once what was printed is out."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    logging.shutdown()
    os._exit(status)


def console() -> NoReturn:
    """The ``telemetry-inspector`` console script and ``python -m mockserver``."""
    sys.exit(main(leave_at_once=True))


if __name__ == "__main__":
    console()
