"""How to bring a real app's requests to the mock without editing the app.

refine's beacon goes to a hard-coded ``https://telemetry.refine.dev``; these
helpers spell out the browser flags and hosts-file line for given ports.
"""

from __future__ import annotations

import shlex

from mockserver.core.config import REFINE_HOST

# Headless Chromium in a closed network (and as root) needs these to start quietly.
QUIET_CHROMIUM_FLAGS = (
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
)


def chromium_routing_flags(https_port: int, spki_pin: str, host: str = "127.0.0.1") -> list[str]:
    """Flags that send telemetry.refine.dev to the local HTTPS listener, trusting only our key."""
    return [
        f"--host-resolver-rules=MAP {REFINE_HOST} {host}:{https_port}",
        f"--ignore-certificate-errors-spki-list={spki_pin}",
    ]


def chromium_command_line(https_port: int, spki_pin: str, host: str = "127.0.0.1",
                          executable: str = "chromium", profile: str = "$(mktemp -d)") -> str:
    """A shell line a person can paste to start a routed browser."""
    flags = [f"--user-data-dir={profile}", *chromium_routing_flags(https_port, spki_pin, host)]
    quoted = [shlex.quote(f) if not f.startswith("--user-data-dir=$(") else f for f in flags]
    return " ".join([executable, *quoted])


def hosts_file_line(host: str = "127.0.0.1") -> str:
    """The hosts-file entry that points telemetry.refine.dev here (HTTPS must be on port 443)."""
    return f"{host} {REFINE_HOST}"
