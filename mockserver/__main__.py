"""``python -m mockserver``: the same as the ``telemetry-inspector`` command."""

from mockserver.cli.main import console

console()
