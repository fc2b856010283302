"""refine Telemetry Inspector's desktop window (PySide6).

Only renders and forwards: all decoding, storage and serving live in the
Qt-free :mod:`mockserver` package. Entry point: :func:`inspector.app.run`.
"""
