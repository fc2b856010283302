"""``python -m mockserver``: the same as the ``telemetry-inspector`` command."""

from .cli import console

console()
