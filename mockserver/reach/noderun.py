"""A Node program with telemetry.refine.dev routed to an own mock (``telemetry-inspector run -- CMD …``).

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

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from mockserver.serving.probe import new_nonce
from mockserver.serving.server import InspectorServer, Listening
from mockserver.storage.store import BeaconStore

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
