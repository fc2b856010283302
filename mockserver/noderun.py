"""``telemetry-inspector run -- CMD …``: a Node program with telemetry.refine.dev routed to the mock.

The refine CLI (``@refinedev/cli``) posts to ``https://telemetry.refine.dev/cli``
after each command. Node resolves the host with ``dns.lookup`` and checks TLS
against its CA list, so the child gets:

* ``NODE_OPTIONS=--require <route-refine.cjs>``: a preload (shipped in
  ``mockserver/resources``) that maps the host to the mock in ``dns.lookup``
  and swaps port 443 for the mock's HTTPS port in ``tls.connect`` (which
  ``https.request``, node-fetch and the global ``fetch``/undici all use);
* ``NODE_EXTRA_CA_CERTS``: the mock's CA (joined with any CA file already set).

Non-Node programs run too, but nothing routes them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from .probe import PROBE_WAIT, UNPROVEN, new_nonce
from .server import InspectorServer, Listening, ServerError
from .store import BeaconStore, StoreError
from .verdict import Expectation, ExpectationError, FieldCheck, Verdict, judge, write_junit
from .text import plural

DEFAULT_WITHIN = 1.0
ENV_HTTPS_PORT = "TELEMETRY_INSPECTOR_HTTPS_PORT"
ENV_HTTP_PORT = "TELEMETRY_INSPECTOR_HTTP_PORT"
ENV_TARGET_HOST = "TELEMETRY_INSPECTOR_TARGET_HOST"
ENV_PROBE = "TELEMETRY_INSPECTOR_PROBE"  # a route-probe nonce: the preload loads that probe once per process


def preload_path() -> Path:
    """The Node preload that routes telemetry.refine.dev (a real file inside the installed package)."""
    return Path(str(resources.files("mockserver") / "resources" / "route-refine.cjs"))


def _node_option_value(path: str) -> str:
    # NODE_OPTIONS splits on spaces; inside double quotes a backslash escapes
    # the next character (so Windows paths need theirs doubled).
    if not any(ch in path for ch in ' "\\\t'):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def node_options_with_preload(existing: str | None, preload: Path | None = None) -> str:
    """``NODE_OPTIONS`` with our ``--require`` added (the user's own options kept)."""
    flag = f"--require {_node_option_value(str(preload or preload_path()))}"
    return f"{existing} {flag}".strip() if existing else flag


def routed_node_env(base: Mapping[str, str], *, https_port: int, ca_file: Path | str, http_port: int | None = None,
                    host: str = "127.0.0.1", preload: Path | None = None) -> dict[str, str]:
    """The environment for a Node child whose telemetry.refine.dev requests go to the mock.

    ``ca_file`` becomes ``NODE_EXTRA_CA_CERTS``; when the caller already set one,
    pass a bundle holding both (see :func:`ca_bundle`).
    """
    env = dict(base)
    env["NODE_OPTIONS"] = node_options_with_preload(base.get("NODE_OPTIONS"), preload)
    env["NODE_EXTRA_CA_CERTS"] = str(ca_file)
    env[ENV_HTTPS_PORT] = str(https_port)
    env[ENV_TARGET_HOST] = host
    if http_port:
        env[ENV_HTTP_PORT] = str(http_port)
    return env


def ca_bundle(our_ca: Path, existing: str | None, directory: Path) -> Path:
    """Our CA, plus the user's ``NODE_EXTRA_CA_CERTS`` file if set (Node reads only one file)."""
    if not existing or not os.path.isfile(existing):
        return our_ca
    bundle = directory / "node-extra-ca.pem"
    mine = our_ca.read_bytes()
    theirs = Path(existing).read_bytes()
    bundle.write_bytes(theirs.rstrip(b"\n") + b"\n" + mine)
    return bundle


class RoutedNode:
    """The mock (in memory, free ports, private certificate) plus the environment for Node children.

    ``with RoutedNode() as routed: subprocess.run(cmd, env=routed.env())``;
    ``routed.store`` holds what arrived. Used by ``run`` and the pytest plugin.
    """

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="telemetry-inspector-run-")
        self.directory = Path(self._tmp.name)
        self.store = BeaconStore(":memory:")
        self.server = InspectorServer(self.store, port=0, https_port=0, certificate_dir=self.directory / "tls")
        self.listening: Listening | None = None
        self.probe_nonce = new_nonce()

    def start(self) -> Listening:
        """Start the mock; ServerError/StoreError on failure."""
        self.listening = self.server.start()
        return self.listening

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child's environment (``base`` defaults to ``os.environ``)."""
        base = os.environ if base is None else base
        assert self.listening and self.listening.https_port and self.server.certificate
        ca = ca_bundle(self.server.certificate.ca_cert, base.get("NODE_EXTRA_CA_CERTS"), self.directory)
        env = routed_node_env(base, https_port=self.listening.https_port, http_port=self.listening.port, ca_file=ca)
        env[ENV_PROBE] = self.probe_nonce
        return env

    def route_proven(self, timeout: float = 0.0) -> bool:
        """Whether a Node process started with :meth:`env` loaded the preload and its probe arrived."""
        return bool(self.server.app.extensions["probes"].wait(self.probe_nonce, timeout))

    def close(self) -> None:
        """Stop the mock and remove its files."""
        self.server.stop()
        self.store.close()
        self._tmp.cleanup()

    def __enter__(self) -> RoutedNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the command ------------------------------------------------------------------

def add_command(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``run [--expect …] [--within S] -- CMD …``."""
    parser = subparsers.add_parser(
        "run", help="run a Node program (e.g. npx refine build) with telemetry.refine.dev routed to the mock",
        description="Run CMD with telemetry.refine.dev routed to an own mock (Node: a --require preload in "
                    "NODE_OPTIONS and NODE_EXTRA_CA_CERTS), show what it sent. Exit status: the verdict's when "
                    "--expect is given (0 pass, 1 fail), else the command's; 2 when it could not run.")
    parser.add_argument("--expect", metavar="none|any|N",
                        help="judge what the command sent: none (e.g. with REFINE_NO_TELEMETRY=true), any, or N")
    parser.add_argument("--within", type=_seconds, default=DEFAULT_WITHIN, metavar="SECONDS",
                        help="after the command exits, wait until no request came for this long (default %(default)g)")
    parser.add_argument("--field", action="append", default=[], metavar="PATH=VALUE",
                        help="with --expect: each request's payload must have PATH equal to VALUE; repeatable")
    parser.add_argument("--junit", metavar="FILE", help="with --expect: also write a JUnit XML report")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...",
                        help="the program and its arguments, after --")
    parser.set_defaults(handler=cmd_run)


def _seconds(text: str) -> float:
    from .verify import _seconds as seconds

    return seconds(text)


def cmd_run(args: argparse.Namespace) -> int:
    """``run``: the verdict's exit status with ``--expect``, else the command's."""
    from .cli import PROG, LinePrinter

    prog = f"{PROG} run"
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]

    def say(text: str) -> None:
        print(f"{prog}: {text}", file=sys.stderr, flush=True)

    if not command:
        say("no command given: telemetry-inspector run [--expect none] -- npx refine build")
        return 2
    try:
        expectation = Expectation.parse(args.expect) if args.expect else None
        fields = [FieldCheck.parse(text) for text in args.field]
    except ExpectationError as exc:
        say(str(exc))
        return 2
    if (fields or args.junit) and expectation is None:
        expectation = Expectation("any")
    started = time.monotonic()
    routed = RoutedNode()
    try:
        try:
            listening = routed.start()
        except (ServerError, StoreError) as exc:
            say(f"cannot start the mock: {exc}")
            return 2
        say(f"telemetry.refine.dev -> {listening.https_url} for {command[0]} "
            "(NODE_OPTIONS preload + NODE_EXTRA_CA_CERTS)")
        # stderr: the command's own output keeps stdout. Each request with what it carried, decoded.
        printer = LinePrinter(sys.stderr, False, verbose=True)
        unsubscribe = routed.store.subscribe(printer)
        try:
            status = _run_child(command, routed.env(), say)
            if status is None:
                return 2
            _wait_quiet(routed.store, args.within)
            proven = routed.route_proven(PROBE_WAIT if expectation is not None and not routed.store.count() else 0)
        finally:
            unsubscribe()
            printer.close()
        captured = routed.store.query()
    finally:
        routed.close()
    if status != 0:
        say(f"{command[0]} exited with status {status}")
    if expectation is None:
        say(f"{plural(len(captured), 'request')} to telemetry.refine.dev")
        return status
    verdict = judge(captured, expectation, fields)  # each request was shown, decoded, as it arrived
    if verdict.passed and not captured and not proven:
        say(f"{UNPROVEN} (no Node process of {command[0]} sent the routing preload's probe: NODE_OPTIONS was "
            "dropped or replaced, the program is not Node (Bun and Deno are not routed), or it ended at once)")
        if args.junit:
            _write_junit(args.junit, command, expectation, None, started, error=UNPROVEN, say=say)
        return 2
    say(("route proven: " if proven else "route not proven: ") + (
        "the routing preload's probe reached this inspector" if proven else "no probe arrived from the preload"))
    say(verdict.summary())
    for advice in verdict.advice:
        say(f"how to opt out: {advice}")
    if args.junit and not _write_junit(args.junit, command, expectation, verdict, started, say=say):
        return 2
    return verdict.exit_code


def _write_junit(path: str, command: Sequence[str], expectation: Expectation, verdict: Verdict | None,
                 started: float, *, say: Callable[[str], None], error: str | None = None) -> bool:
    """Write ``run``'s JUnit report; False (after saying why) when it cannot be written."""
    from .cli import format_line

    output = "\n".join(format_line(b) for b in verdict.beacons) if verdict is not None else ""
    try:
        write_junit(Path(path).expanduser(), name=f"{' '.join(command)} (expect {expectation})",
                    verdict=verdict, seconds=time.monotonic() - started, output=output, error=error,
                    suite="telemetry-inspector run")
    except OSError as exc:
        say(f"cannot write --junit {path}: {exc.strerror or exc}")
        return False
    return True


def _run_child(command: Sequence[str], env: dict[str, str], say: Callable[[str], None]) -> int | None:
    """Run the command to its end; its exit status, or None when it cannot be started."""
    try:
        child = subprocess.Popen(list(command), env=env)
    except FileNotFoundError:
        say(f"command not found: {command[0]}")
        return None
    except OSError as exc:
        say(f"cannot run {command[0]}: {exc.strerror or exc}")
        return None
    try:
        return child.wait()
    except KeyboardInterrupt:
        # The child had the Ctrl-C too (same terminal); give it a moment to finish.
        try:
            return child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise


def _wait_quiet(store: BeaconStore, within: float) -> None:
    """Wait until no request arrived for ``within`` seconds (requests still in flight at exit count)."""
    last_count = store.count()
    quiet_since = time.monotonic()
    cap = quiet_since + max(3 * within, within + 10)
    while time.monotonic() - quiet_since < within and time.monotonic() < cap:
        time.sleep(0.1)
        current = store.count()
        if current != last_count:
            last_count, quiet_since = current, time.monotonic()
