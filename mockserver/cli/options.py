"""The command line's shared parts: its parsers, option types and the options several commands take.

Every error a user can cause in an argument is one line on stderr and exit status 2
(:class:`UsageError`, raised by :class:`Parser` and by the command handlers), in the form
:func:`mockserver.core.text.command_message` gives every message: ``telemetry-inspector COMMAND: message``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeAlias

from mockserver.core.config import (
    APP_NAME,
    DEFAULT_HOST,
    DEFAULT_HTTPS_PORT,
    DEFAULT_PORT,
    ENV_BROWSER,
    ENV_DB,
    ENV_HOME,
    default_db,
)
from mockserver.core.text import command_message

# --browser of `browser` and `verify`.
BROWSER_HELP = ("a Chromium-family browser (Chrome, Chromium, Edge, Brave, Opera, Vivaldi) or Firefox (routed "
                "through a private proxy, the inspector's CA imported with certutil); others are refused "
                f"(default: env {ENV_BROWSER}, then Chrome/Chromium/Edge in the usual places, then Firefox)")

PROG = APP_NAME


class UsageError(Exception):
    """Bad input the user can fix: one line on stderr, exit 2.

    ``message`` is the text after the prefix; ``command`` the command it is about (None: the one the
    command line names, else none). :meth:`line` is what is printed.
    """

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.command = command

    def line(self, command: str | None = None) -> str:
        """The line printed: ``telemetry-inspector COMMAND: message`` (``command`` when none was given)."""
        return command_message(self.command or command, self.message)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one clear line (and exit 2), not a usage dump:
    ``telemetry-inspector serve: argument --port: … (see telemetry-inspector serve --help)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: defaults of the options this parser shares with the top level (see add_shared_argument)
        self.shared_defaults: dict[str, Any] = {}

    @property
    def command(self) -> str | None:
        """The command this parser reads (``serve``), None for the top level: argparse names a command's
        parser ``telemetry-inspector serve``."""
        return self.prog.removeprefix(PROG).strip() or None

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)", self.command)


#: what ``add_subparsers`` gives each command module's ``add_command`` (its parsers are ``Parser``)
CommandParsers: TypeAlias = "argparse._SubParsersAction[Parser]"


class TopParser(Parser):
    """The top level: options given before the command go to the command that takes them, or are refused.

    ``telemetry-inspector --db X export`` and ``export --db X`` mean the same; given in both places, the
    value after the command wins. An option the command does not take (``--port 0 export``) is one line
    naming the command, exit 2, instead of being silently ignored.
    """

    commands: CommandParsers

    # Ignored override: argparse's overloads; the CLI calls only this form.
    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # argparse would say so at the top level: the command's own parser does, in its name
            self._target(parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _target(self, parsed: argparse.Namespace) -> Parser:
        """The parser of the command ``parsed`` names (this one for none)."""
        command = getattr(parsed, "subcommand", None)
        return self.commands.choices[command] if command else self

    # Ignored override: argparse's overloads; the CLI calls only this form.
    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        command = getattr(parsed, "subcommand", None)
        target = self._target(parsed)
        for dest in self.shared_defaults:
            if hasattr(parsed, dest) and dest not in target.shared_defaults:
                raise UsageError(f"{self._flag_for(dest, getattr(parsed, dest))} does not apply to {command} "
                                 f"(see {PROG} {command} --help)", command)
        for action in target._actions:
            value = getattr(parsed, action.dest, None)
            if action.dest in self.shared_defaults and action.choices and hasattr(parsed, action.dest) \
                    and value not in action.choices:  # given before the command: checked by the top level only
                raise UsageError(f"{self._flag_for(action.dest, value)} {value} does not apply to {command} "
                                 f"(choose {' or '.join(map(str, action.choices))})", command)
        self._check_exclusive(target, parsed, command)
        for dest, default in target.shared_defaults.items():
            if not hasattr(parsed, dest):
                setattr(parsed, dest, default)
        return parsed, extras

    def _flag_for(self, dest: str, value: Any) -> str:
        """The top-level flag that set ``dest`` to ``value`` (``--no-https`` for https_port None)."""
        actions = [a for a in self._actions if a.dest == dest and a.option_strings]
        flag = next((a for a in actions if a.nargs == 0 and a.const == value), actions[0])
        return flag.option_strings[0]

    def _check_exclusive(self, target: Parser, parsed: argparse.Namespace, command: str | None) -> None:
        """argparse checks a command's exclusive options among those after it; this checks a shared one
        given before it too (``--db X screenshot --demo``)."""
        for group in target._mutually_exclusive_groups:
            given = [a for a in group._group_actions
                     if hasattr(parsed, a.dest) and getattr(parsed, a.dest) != a.default]
            if len(given) > 1 and any(a.dest in target.shared_defaults for a in given):
                raise UsageError(f"{given[0].option_strings[0]} and {given[1].option_strings[0]} cannot go "
                                 f"together (see {PROG} {command} --help)", command)


def whole_number(low: int, high: int | None = None, *, what: str, hint: str = "") -> Callable[[str], int]:
    """An argparse ``type`` taking a whole number in ``low``..``high`` (no upper bound when None).

    Errors read e.g. ``port must be 0-65535 (0 = any free port), got 70000``.
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} is a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            allowed = f"{low}-{high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{what} must be {allowed}{hint}, got {value}")
        return value

    return parse


port_number = whole_number(0, 65535, what="port", hint=" (0 = any free port)")


def record_id(text: str) -> int:
    """An argparse ``type`` for a record id: ``12``, or ``#12`` as the table shows it."""
    value = text.strip().lstrip("#")
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a record id is a whole number such as 12, got {text!r}")
    return int(value)


def add_shared_argument(parser: Parser, container: argparse._ActionsContainer, *flags: str, default: Any,
                        **kwargs: Any) -> argparse.Action:
    """An option that may also come before the command (``--db X export``), added to ``container``
    (``parser`` or one of its groups).

    argparse lets a command's default overwrite a value parsed before the command, so the option
    defaults to SUPPRESS here and ``default`` is applied after parsing (by :class:`TopParser`).
    Help texts must spell out the default themselves: ``%(default)s`` would read ``==SUPPRESS==``.
    """
    action = container.add_argument(*flags, default=argparse.SUPPRESS, **kwargs)
    parser.shared_defaults.setdefault(action.dest, default)
    return action


def add_server_options(parser: Parser) -> None:
    """The options every command that runs the mock shares (``serve``, ``browser`` and the GUI)."""
    group = parser.add_argument_group("mock server")
    add_shared_argument(parser, group, "--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}; anything else is reachable from the "
                             "network)")
    add_shared_argument(parser, group, "--port", type=port_number, default=DEFAULT_PORT,
                        help=f"HTTP port (default {DEFAULT_PORT}; 0 = any free port)")
    add_shared_argument(parser, group, "--https-port", type=port_number, default=DEFAULT_HTTPS_PORT,
                        help=f"HTTPS port for routed browsers (default {DEFAULT_HTTPS_PORT}; 0 = any free port)")
    add_shared_argument(parser, group, "--no-https", dest="https_port", action="store_const", const=None,
                        default=DEFAULT_HTTPS_PORT, help="do not start the HTTPS listener")
    add_shared_argument(parser, group, "--proxy-port", type=port_number, default=None, metavar="PORT",
                        help="also run a loopback HTTP(S) proxy on PORT (0 = any free port; default off): "
                             "telemetry.refine.dev through it is recorded, every other host passes untouched")
    add_db_option(parser, group)
    add_shared_argument(parser, group, "--trust-proxy", action="store_true", default=False,
                        help="take the client IP from X-Forwarded-For (only behind your own proxy)")


def add_db_option(parser: Parser, container: argparse._ActionsContainer | None = None) -> None:
    """``--db PATH`` with the app's default database, in ``container`` (default: ``parser`` itself)."""
    default = default_db()
    add_shared_argument(parser, container if container is not None else parser, "--db", default=default,
                        metavar="PATH",
                        help=f"SQLite database, or :memory: (default {default}; env {ENV_DB}, {ENV_HOME})")


def seconds(text: str) -> float:
    """An argparse ``type`` for a wait: a number of seconds from 0 to 3600."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0 or value > 3600:
        raise argparse.ArgumentTypeError(f"seconds must be between 0 and 3600, got {text}")
    return value


def egress_policy(text: str) -> str:
    """An argparse ``type`` for ``--egress``: ``any`` or ``none``."""
    from mockserver.records.egress import check_policy

    try:
        return check_policy(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be any or none, got {text!r}") from None


def add_egress_options(parser: argparse.ArgumentParser, *, policy: bool = True) -> None:
    """``--egress any|none`` (unless not ``policy``: ``browser`` has no verdict) and ``--full-urls``:
    the other hosts listed beside the verdict (``verify``, ``run``, ``browser``)."""
    if policy:
        parser.add_argument("--egress", type=egress_policy, default="any", metavar="any|none",
                            help="other hosts the app contacts are listed beside the verdict; none: any of them "
                                 "is a failure, for the strictest \"nothing phones home\" check (default any)")
    parser.add_argument("--full-urls", action="store_true",
                        help="list other hosts' URLs with their query strings (default: the query is left out)")


def add_verdict_options(parser: argparse.ArgumentParser, *, within: float, quiet_after: str,
                        expect_default: str | None) -> None:
    """``--expect``, ``--within``, ``--field``, ``--junit`` and the egress options, as ``verify`` and
    ``run`` share them.

    ``quiet_after`` says when the quiet period starts (``the page loaded``); ``expect_default``
    None makes judging optional (``run``: without ``--expect`` the exit status is the program's),
    and the options that only mean something with a verdict say so.
    """
    judged = "" if expect_default is not None else "with --expect: "
    parser.add_argument("--expect", default=expect_default, metavar="none|any|N",
                        help="none (the opt-out check), any (one or more) or exactly N requests" +
                             (f" (default {expect_default})" if expect_default else
                              "; without it nothing is judged"))
    parser.add_argument("--within", type=seconds, default=within, metavar="SECONDS",
                        help=f"quiet period after {quiet_after}: stop once no request came for this long "
                             "(default %(default)g)")
    parser.add_argument("--field", action="append", default=[], metavar="PATH=VALUE",
                        help=f"{judged}each request's payload must have PATH (dotted, e.g. providers.auth) equal "
                             "to VALUE (JSON when it parses, else text); repeatable")
    parser.add_argument("--junit", metavar="FILE", help=f"{judged}also write a JUnit XML report to FILE")
    add_egress_options(parser)
