"""The answers refine's endpoints and the journal API share: the JSON body and the headers (the GIF: core.wire)."""

from __future__ import annotations

from typing import Any

from flask import Response

from mockserver.core.jsontext import dumps_strict

CORS = {"Access-Control-Allow-Origin": "*"}  # refine's endpoints only: never on the journal API
NO_STORE = {"Cache-Control": "no-store"}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``data`` as strict JSON (always encodable as UTF-8), never cached."""
    body = dumps_strict(data)
    return Response(body, status=status, mimetype="application/json", headers={**NO_STORE, **(headers or {})})


def error_response(message: str, status: int) -> Response:
    """``{"error": message}`` with ``status``."""
    return json_response({"error": message}, status)
