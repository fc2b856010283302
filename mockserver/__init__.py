"""Headless mock of telemetry.refine.dev: capture, decode, enrich, store.

Never imports Qt (a test enforces it): front ends subscribe to
:class:`~mockserver.storage.store.BeaconStore` instead.
"""

__version__ = "0.1.0"
