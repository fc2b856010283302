"""How to opt out, by refine generation: one table for the CLI, the window and the pytest plugin.

Each entry was read in the published packages' dist code (``npm pack``, the
sources in ``dist/index.js.map``):

- ``@pankod/refine-core`` 3.36 and 3.38 send nothing. 3.40.0-3.58.5 send an
  encrypted ``POST /send`` and read only the top-level ``<Refine disableTelemetry>``
  prop (no ``options.disableTelemetry``). The CHANGELOG moves the flag into
  ``options`` in 3.62.0 (npm has nothing between 3.58.5 and 3.65.0); 3.65.x
  still posts ``/send`` and reads ``options.disableTelemetry ?? disableTelemetry``;
  3.69.6 and 3.103.0 send ``GET /telemetry`` and read both.
- ``@refinedev/core`` 4.x and 5.x read ``options.disableTelemetry`` only: the
  top-level prop, which the docs page shows, is ignored.
- ``@refinedev/cli`` reads ``REFINE_NO_TELEMETRY`` and opts out only when it is
  exactly ``true``, from the environment or ``.env``.
- ``create-refine-app`` (superplate): ``--disable-telemetry`` stops ``POST
  /superplate`` only; ``POST /projects`` is sent at every project creation and
  carries the email when one is typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mockserver.core.beacon import Beacon

CORE_4_AND_5 = (
    "@refinedev/core 4.x and 5.x: opt out with <Refine options={{ disableTelemetry: true }}>; a top-level "
    "disableTelemetry prop (what the docs page shows) is ignored, and the beacon is still sent."
)
CORE_3_BOTH = (
    "@pankod/refine-core 3.62 and later 3.x: <Refine options={{ disableTelemetry: true }}> opts out, and so "
    "does the older top-level <Refine disableTelemetry> prop (deprecated, still read)."
)
CORE_3_ENCRYPTED = (
    "@pankod/refine-core 3.40-3.65 (the encrypted POST /send): before 3.62 only the top-level "
    "<Refine disableTelemetry> prop opts out (3.58 has no options.disableTelemetry); from 3.62 "
    "options={{ disableTelemetry: true }} works as well."
)
CLI = (
    "@refinedev/cli: set REFINE_NO_TELEMETRY=true (exactly \"true\"; 1 or yes do not count), "
    "in the environment or in the project's .env."
)
CREATE_REFINE_APP = (
    "create-refine-app: --disable-telemetry stops POST /superplate only. POST /projects is sent at every "
    "project creation, whatever the flag, and carries the email address when one is typed: leave the "
    "email prompt empty to send none."
)
SUPERPLATE = "create-refine-app: --disable-telemetry stops this POST /superplate."

_VERSION = re.compile(r"\s*v?(\d+)\.(\d+)")


def _major_minor(version: object) -> tuple[int, int] | None:
    found = _VERSION.match(version) if isinstance(version, str) else None
    return (int(found.group(1)), int(found.group(2))) if found else None


def _beacon_advice(beacon: Beacon) -> list[str]:
    version = _major_minor(beacon.payload_get("version"))
    if version is None:  # undecodable or no version: the two opt-outs it can be
        return [CORE_4_AND_5, CORE_3_BOTH]
    if version[0] >= 4:
        return [CORE_4_AND_5]
    # A 3.x GET /telemetry comes from 3.69 or later, which reads both forms.
    return [CORE_3_BOTH]


def advice_for(beacon: Beacon) -> list[str]:
    """How the sender of ``beacon`` is really opted out (empty when nothing is known to stop it)."""
    kind = beacon.kind
    if kind == "preflight":  # announces the request it precedes: /send or /telemetry
        kind = "encrypted" if beacon.request.path == "/send" else "beacon"
    if kind == "beacon":
        return _beacon_advice(beacon)
    if kind == "encrypted":
        return [CORE_3_ENCRYPTED]
    if kind == "cli":
        return [CLI]
    if kind == "project":
        return [CREATE_REFINE_APP]
    if kind == "superplate":
        return [SUPERPLATE]
    if kind in ("unknown", "location"):  # some other client of the host: the app's own opt-out first
        return [CORE_4_AND_5]
    return []


def advice_for_all(beacons: Iterable[Beacon]) -> list[str]:
    """The advice for every record, each text once, in the order the records need it."""
    seen: dict[str, None] = {}
    for beacon in beacons:
        for text in advice_for(beacon):
            seen.setdefault(text, None)
    return list(seen)
