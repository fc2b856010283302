"""Build and serve the real refine fixture apps used by end-to-end tests.

Every app shares one React entry (``src/app.jsx``) and one esbuild script
(``build.mjs``); each is a directory named by its key in :data:`APPS`, with
its core pinned exactly in ``package.json`` and ``package-lock.json``:

* ``refine3jwe/``: ``@pankod/refine-core`` 3.58.1, the encrypted ``POST /send``
* ``refine3/``: ``@pankod/refine-core`` 3.103.0, ``GET /telemetry``, both opt-outs
* ``refine428/``: ``@refinedev/core`` 4.28.2, no StrictMode guard
* ``refine4/``: ``@refinedev/core`` 4.58.0
* ``refine5/``: ``@refinedev/core`` 5.0.12

Each build writes ``<app>/dist/index.html`` (production bundle) and
``<app>/dist/dev.html`` (React development bundle). The page picks its
``<Refine>`` props from the query string, see :func:`page_url`.

Stdlib only. Run ``python tests/e2e/fixture_apps.py [NAME...]`` to build every
app (or the ones named).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent
SRC_DIR = E2E_DIR / "src"
BUILD_SCRIPT = E2E_DIR / "build.mjs"



@dataclass(frozen=True)
class FixtureApp:
    """One fixture app: its directory name under ``tests/e2e`` and the core it pins."""

    name: str
    package: str
    version: str


#: Every fixture app by name. What each version sends and reads was checked in
#: its ``dist/index.js.map`` sources (``src/components/telemetry``,
#: ``src/components/containers/refine``, ``handleRefineOptions``):
APPS: dict[str, FixtureApp] = {app.name: app for app in (
    # fetch POST https://telemetry.refine.dev/send, body a compact JWE (jose CompactEncrypt,
    # RSA-OAEP-256 / A256GCM), Content-Type application/text: Chromium preflights it.
    # <Refine> has no `options` prop; only the top-level `disableTelemetry` prop opts out.
    FixtureApp("refine3jwe", "@pankod/refine-core", "3.58.1"),
    # new Image().src = .../telemetry?payload=btoa(JSON); handleRefineOptions reads
    # `options?.disableTelemetry ?? disableTelemetry`, so both forms opt out.
    FixtureApp("refine3", "@pankod/refine-core", "3.103.0"),
    # The same GET /telemetry with no useRef guard: StrictMode sets img.src twice
    # (the browser loads it once). Only `options.disableTelemetry` is read.
    FixtureApp("refine428", "@refinedev/core", "4.28.2"),
    # GET /telemetry once per mount; only `options.disableTelemetry` is read.
    FixtureApp("refine4", "@refinedev/core", "4.58.0"),
    FixtureApp("refine5", "@refinedev/core", "5.0.12"),
)}

#: Refine major version -> exact ``@refinedev/core`` version of the apps in
#: ``tests/data/real_beacons.json`` (``refine4/``, ``refine5/``).
REFINE_VERSIONS: dict[int, str] = {4: APPS["refine4"].version, 5: APPS["refine5"].version}

#: Scenarios understood by the fixture page (``?variant=``).
VARIANTS = ("default", "optout", "toplevel", "projectid", "strict")

_DIST_FILES = ("index.html", "app.js", "dev.html", "app.dev.js")
_NPM_TIMEOUT_S = 600
_TAIL_CHARS = 4000
_locks: dict[str, threading.Lock] = {name: threading.Lock() for name in APPS}

AppKey = str | int


def app_name(app: AppKey) -> str:
    """The :data:`APPS` name for ``app``: a name, or a major version 4 or 5 (``refine4``, ``refine5``)."""
    name = f"refine{app}" if isinstance(app, int) and app in REFINE_VERSIONS else app
    if name not in APPS:
        raise ValueError(f"unknown refine fixture app {app!r}; "
                         f"expected one of {sorted(APPS)} or {sorted(REFINE_VERSIONS)}")
    return name


def app_dir(app: AppKey) -> Path:
    """Return the directory of the fixture app ``app`` (a name in :data:`APPS`, or 4 or 5)."""
    return E2E_DIR / app_name(app)


# Content stamps, not time stamps: a fresh clone or checkout (new mtimes, same files) neither
# reinstalls nor rebuilds, and a changed lockfile or source always does. The install stamp has the
# name and form scripts/install-test-deps writes for the other fixtures (the lockfile's SHA-256).
INSTALL_STAMP = Path("node_modules") / ".installed-lock.sha256"
BUILD_STAMP = Path("dist") / ".built-from.sha256"


def _digest(paths: list[Path]) -> str:
    """One SHA-256 over the files' names and contents (a missing file counts as absent)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(E2E_DIR)).encode() + b"\0")
        with contextlib.suppress(FileNotFoundError):
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _install_inputs(app: Path) -> str:
    return hashlib.sha256((app / "package-lock.json").read_bytes()).hexdigest()


def _build_inputs(app: Path) -> str:
    sources = [BUILD_SCRIPT, app / "package.json", app / "package-lock.json"]
    sources += sorted(p for p in SRC_DIR.rglob("*") if p.is_file())
    return _digest(sources)


def _stamp_says(stamp: Path, want: str) -> bool:
    try:
        return stamp.read_text(encoding="utf-8").strip() == want
    except FileNotFoundError:
        return False


def _needs_install(app: Path) -> bool:
    return not _stamp_says(app / INSTALL_STAMP, _install_inputs(app))


def _needs_build(app: Path) -> bool:
    dist = app / "dist"
    if not all((dist / name).exists() for name in _DIST_FILES):
        return True
    return not _stamp_says(app / BUILD_STAMP, _build_inputs(app))


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    env = dict(os.environ)
    env.setdefault("npm_config_update_notifier", "false")
    env.setdefault("npm_config_fund", "false")
    env.setdefault("npm_config_audit", "false")
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=_NPM_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.output or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        raise RuntimeError(
            f"{what} timed out after {_NPM_TIMEOUT_S}s in {cwd}\n--- output tail ---\n{out[-_TAIL_CHARS:]}"
        ) from exc
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} failed (exit {proc.returncode}) in {cwd}: {' '.join(cmd)}\n"
            f"--- output tail ---\n{proc.stdout[-_TAIL_CHARS:]}"
        )


def _check_pin(fixture: FixtureApp, directory: Path) -> None:
    # The table above and package.json must name the same exact version.
    pinned = json.loads((directory / "package.json").read_text(encoding="utf-8")).get("dependencies", {})
    if pinned.get(fixture.package) != fixture.version:
        raise RuntimeError(f"{directory / 'package.json'} pins {fixture.package} {pinned.get(fixture.package)!r}, "
                           f"fixture_apps.APPS says {fixture.version!r}")


def build(app: AppKey) -> Path:
    """Install (if needed) and build the fixture app ``app`` (a name in :data:`APPS`, or 4 or 5).

    ``npm ci`` runs only when ``node_modules`` was not installed from this very
    lockfile; the esbuild build runs only when ``dist/`` is missing or was built
    from other sources (``src/``, ``build.mjs``, ``package.json``, the lockfile):
    both are content stamps, so a fresh checkout of the same files does neither. Safe to call from several threads or
    processes at once (an ``fcntl`` lock per app serialises the work).

    Returns the ``dist`` directory (containing ``index.html``).
    Raises :class:`RuntimeError` with the tail of npm's output on failure.
    """
    name = app_name(app)
    directory = app_dir(name)
    _check_pin(APPS[name], directory)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found on PATH: Node.js 20+ and npm are needed to build the refine fixture apps")
    with _locks[name], open(directory / ".build.lock", "w") as lockfile:
        fcntl.flock(lockfile, fcntl.LOCK_EX)
        try:
            if _needs_install(directory):
                _run([npm, "ci", "--no-audit", "--no-fund"], directory, f"npm ci for {name} fixture")
                (directory / INSTALL_STAMP).write_text(_install_inputs(directory) + "\n", encoding="utf-8")
            if _needs_build(directory):
                _run([npm, "run", "build"], directory, f"esbuild build for {name} fixture")
                (directory / BUILD_STAMP).write_text(_build_inputs(directory) + "\n", encoding="utf-8")
        finally:
            fcntl.flock(lockfile, fcntl.LOCK_UN)
    dist = directory / "dist"
    if not (dist / "index.html").exists():
        raise RuntimeError(f"build for {name} fixture produced no {dist / 'index.html'}")
    return dist


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@contextlib.contextmanager
def serve(dist: Path) -> Iterator[str]:
    """Serve ``dist`` over plain HTTP on 127.0.0.1 (free port) in a background thread.

    Yields the base URL, e.g. ``"http://127.0.0.1:40123/"``; the server is shut
    down when the ``with`` block exits. Request logging is silenced.
    """
    dist = Path(dist)
    if not dist.is_dir():
        raise FileNotFoundError(f"fixture dist directory not found: {dist}")
    handler = functools.partial(_QuietHandler, directory=str(dist))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=f"fixture-http-{dist.parent.name}", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET address
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def page_url(base_url: str, variant: str = "default", project_id: str | None = None, *, dev: bool = False) -> str:
    """Return the fixture page URL for ``variant`` under ``base_url`` (from :func:`serve`).

    ``project_id`` is only used with ``variant="projectid"`` and is URL-encoded.
    ``dev=True`` selects the React development bundle (``dev.html``), where
    ``<React.StrictMode>`` really double-invokes effects.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown fixture variant {variant!r}; expected one of {VARIANTS}")
    params = {"variant": variant}
    if variant == "projectid":
        params["projectId"] = "" if project_id is None else project_id
    page = "dev.html" if dev else ""
    return urllib.parse.urljoin(base_url, page) + "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)


def main(argv: list[str] | None = None) -> int:
    """Build every fixture app (or the ones named as arguments) and print their dist dirs."""
    args = sys.argv[1:] if argv is None else argv
    names = [app_name(int(a) if a.isdigit() else a) for a in args] or list(APPS)
    for name in names:
        print(f"{name} ({APPS[name].package} {APPS[name].version}): {build(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
