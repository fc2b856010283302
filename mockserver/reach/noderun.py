"""A Node program with telemetry.refine.dev routed to an own mock (``telemetry-inspector run -- CMD …``).

The refine CLI (``@refinedev/cli``) posts to ``https://telemetry.refine.dev/cli``
after each command. Node resolves the host with ``dns.lookup`` and checks TLS
against its CA list, so the child gets:

* ``NODE_OPTIONS=--require <route-refine.cjs>``: a preload (shipped in
  ``mockserver/resources``) that maps the host to the mock in ``dns.lookup``
  and swaps port 443 for the mock's HTTPS port in ``tls.connect`` (which
  ``https.request``, node-fetch and the global ``fetch``/undici all use);
* ``NODE_EXTRA_CA_CERTS``: the mock's CA (joined with any CA file already set);
* ``TELEMETRY_INSPECTOR_EGRESS_FILE``: where the preload lists every other host the
  program looked up, connected to or requested (read by :mod:`mockserver.reach.nodeegress`).

With a ``proxy_port`` the mock's scoped proxy runs too and the child gets ``HTTPS_PROXY`` and
friends (:func:`proxy_env`), so that programs which honour a proxy (curl, Python, Node 24 with
``NODE_USE_ENV_PROXY=1``) are routed as well; the hosts they reach through it are listed from the
proxy's log. Without one, non-Node programs run too, but nothing routes them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from mockserver.core.text import plural
from mockserver.reach.nodeegress import ENV_EGRESS_FILE, EgressReport, create_report, read_report
from mockserver.serving.probe import new_nonce, probe_url
from mockserver.serving.server import InspectorServer, Listening
from mockserver.storage.store import BeaconStore

ENV_HTTPS_PORT = "TELEMETRY_INSPECTOR_HTTPS_PORT"
ENV_HTTP_PORT = "TELEMETRY_INSPECTOR_HTTP_PORT"
ENV_TARGET_HOST = "TELEMETRY_INSPECTOR_TARGET_HOST"
ENV_PROBE = "TELEMETRY_INSPECTOR_PROBE"  # a route-probe nonce: the preload loads that probe once per process
ENV_PROBE_URL = "TELEMETRY_INSPECTOR_PROBE_URL"  # the same probe, for a program that only honours the proxy
ENV_CA_FILE = "TELEMETRY_INSPECTOR_CA_FILE"  # the mock's CA alone (curl --cacert, a Python bundle)
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
DIRECT = "localhost,127.0.0.1,::1"  # NO_PROXY: loopback stays direct (the app's own servers, the mock)
PRELOAD_PROOF = "the routing preload's probe reached this inspector"


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


def proxy_env(proxy_url: str) -> dict[str, str]:
    """The variables that send a child's HTTP(S) through the scoped proxy, loopback left direct.

    Both spellings, since clients differ (curl reads only the lower-case ``http_proxy``);
    ``NODE_USE_ENV_PROXY=1`` makes Node 24's http and fetch honour them. The user's own
    ``NO_PROXY`` is replaced: every host the proxy does not intercept goes straight on anyway.
    """
    env = dict.fromkeys(PROXY_VARIABLES, proxy_url)
    env.update(NODE_USE_ENV_PROXY="1", NO_PROXY=DIRECT, no_proxy=DIRECT)
    return env


class RoutedNode:
    """The mock (in memory, free ports, private certificate) plus the environment for Node children.

    ``with RoutedNode() as routed: subprocess.run(cmd, env=routed.env())``;
    ``routed.store`` holds what arrived, :meth:`other_requests` what else the child contacted.
    ``proxy_port`` (0 = any free port) also runs the scoped proxy and points the child at it.
    Used by ``run`` and the tests.
    """

    def __init__(self, proxy_port: int | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="telemetry-inspector-run-")
        self.directory = Path(self._tmp.name)
        self.store = BeaconStore(":memory:")
        self.server = InspectorServer(self.store, port=0, https_port=0, certificate_dir=self.directory / "tls",
                                      proxy_port=proxy_port)
        self.listening: Listening | None = None
        self.probe_nonce = new_nonce()
        self.egress_file = create_report(self.directory / "egress.jsonl")

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
        env[ENV_PROBE_URL] = probe_url(self.probe_nonce)
        env[ENV_CA_FILE] = str(self.server.certificate.ca_cert)
        env[ENV_EGRESS_FILE] = str(self.egress_file)
        if self.listening.proxy_url:
            env.update(proxy_env(self.listening.proxy_url))
        return env

    def route_proof(self, timeout: float = 0.0) -> str | None:
        """How this run proved that the child's requests to telemetry.refine.dev reach this inspector, or None.

        Either the preload's probe arrived (a Node process loaded the routing), or the child's requests
        to telemetry.refine.dev arrived through the proxy, or it sent connections to other hosts through
        it (it honours ``HTTPS_PROXY``, so its requests to telemetry.refine.dev take the same way).
        ``timeout``: how long to wait for the probe.
        """
        probes = self.server.app.extensions["probes"]
        if probes.seen(self.probe_nonce):
            return PRELOAD_PROOF
        through = sum(1 for beacon in self.store.query() if beacon.client.get("via_proxy"))
        if through:
            return f"{plural(through, 'request')} to telemetry.refine.dev came through the proxy"
        relayed = len(self.server.egress.entries())
        if relayed:
            return f"{plural(relayed, 'connection')} of the program went through the proxy (it honours HTTPS_PROXY)"
        return PRELOAD_PROOF if timeout and probes.wait(self.probe_nonce, timeout) else None

    @property
    def intercepted(self) -> int:
        """Connections to telemetry.refine.dev the proxy handed to the mock (0 without a proxy)."""
        return self.server.proxy.intercepted if self.server.proxy is not None else 0

    def other_requests(self) -> EgressReport:
        """Every other host the child contacted: the preload's report and the proxy's log, oldest first."""
        report = read_report(self.egress_file)
        report.requests += self.server.egress.other_requests()
        report.requests.sort(key=lambda other: other.at or "~")
        return report

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


def run_child(command: Sequence[str], env: dict[str, str], say: Callable[[str], None]) -> int | None:
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


def wait_quiet(store: BeaconStore, within: float) -> None:
    """Wait until no request arrived for ``within`` seconds (requests still in flight at exit count)."""
    last_count = store.count()
    quiet_since = time.monotonic()
    cap = quiet_since + max(3 * within, within + 10)
    while time.monotonic() - quiet_since < within and time.monotonic() < cap:
        time.sleep(0.1)
        current = store.count()
        if current != last_count:
            last_count, quiet_since = current, time.monotonic()
