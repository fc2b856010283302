"""Can Qt open a window here? Answered before any QApplication exists, without importing Qt.

When no platform plugin starts, Qt aborts the process (SIGABRT, exit 134) with a
multi-line message that often blames the wrong thing. :func:`display_problem`
does what Qt's start-up would do, cheaply and in-process: it picks the platforms
Qt would try (``QT_QPA_PLATFORM``, else Wayland when ``WAYLAND_DISPLAY`` is set,
then X11), loads each one's plugin from PySide6 with the dynamic loader (so a
missing or broken library is named, with the Debian package that provides it)
and connects to the display with the library Qt itself uses (libxcb,
libwayland-client). The first platform that passes means Qt will start.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

PROGRAM = "telemetry-inspector"
HEADLESS = f"use '{PROGRAM} serve' without a screen"
NO_DISPLAY = (f"no display: DISPLAY and WAYLAND_DISPLAY are unset; {HEADLESS}, "
              f"or run the window under Xvfb (xvfb-run -a {PROGRAM})")
OFFSCREEN_NOTE = ("note: QT_QPA_PLATFORM=offscreen draws the window where nobody can see it; "
                  f"unset it to see the window; {HEADLESS}, or run the window under Xvfb for screenshots")

# Libraries Qt's X11 and Wayland plugins load (readelf -d on PySide6's plugins and
# libQt6XcbQpa/libQt6Gui/libQt6WaylandClient), with the Debian/Ubuntu package of each.
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
}
KNOWN = ("xcb", "wayland")  # platforms that need a display; any other (offscreen, vnc, eglfs…) is the user's choice
LABEL = {"xcb": "X11", "wayland": "Wayland"}
PLUGIN_FILES = {"xcb": ("libqxcb.so",),
                "wayland": ("libqwayland.so", "libqwayland-generic.so", "libqwayland-egl.so")}
_NOT_FOUND = re.compile(r"^(?P<lib>[^:]+): cannot open shared object file")
_BROKEN = re.compile(r"^(?P<path>/[^:]+): (?P<why>.+)$")


def display_problem(environ: Mapping[str, str] | None = None, platform: str | None = None,
                    plugin_dir: Path | None = None) -> str | None:
    """Why Qt could not open a window here, as one line that names the fix (None when it can), printed
    after the program's name (:func:`mockserver.core.text.command_message`).

    ``environ`` defaults to ``os.environ``, ``platform`` to ``sys.platform`` (only
    Linux is checked), ``plugin_dir`` to PySide6's ``Qt/plugins/platforms``. The display
    libraries read the rest (XAUTHORITY, XDG_RUNTIME_DIR) from the real environment.
    """
    env = os.environ if environ is None else environ
    if not (platform or sys.platform).startswith("linux"):
        return None
    folder = plugin_dir or _plugin_dir(env)
    problems: list[tuple[str, str]] = []
    for name in qt_platforms(env):
        kind = next((k for k in KNOWN if name.startswith(k)), None)
        if kind is None:
            return None  # a platform that needs no display; Qt reports its own errors
        problem = _xcb_problem(env, folder) if kind == "xcb" else _wayland_problem(env, folder)
        if problem is None:
            return None
        problems.append((kind, problem))
    # All failed: report the one the user pointed at (its display variable is set), X11 first.
    wanted = [p for kind, p in problems if env.get("DISPLAY" if kind == "xcb" else "WAYLAND_DISPLAY")]
    shown = wanted or [p for _, p in problems]
    return shown[-1] if shown else None


def offscreen_note(environ: Mapping[str, str] | None = None) -> str | None:
    """A one-line note when Qt will draw the window offscreen, where it cannot be seen (else None)."""
    platforms = qt_platforms(os.environ if environ is None else environ)
    return OFFSCREEN_NOTE if platforms[:1] == ["offscreen"] else None


def qt_platforms(env: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt tries, in order: ``QT_QPA_PLATFORM`` ("a;b", "name:options"),
    else Wayland when ``WAYLAND_DISPLAY`` is set, then X11 (PySide6 6.11's own order)."""
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return [part.split(":", 1)[0].strip() for part in chosen.split(";") if part.strip()]
    return (["wayland"] if env.get("WAYLAND_DISPLAY") or env.get("WAYLAND_SOCKET") else []) + ["xcb"]


def _plugin_dir(env: Mapping[str, str]) -> Path:
    if env.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        return Path(env["QT_QPA_PLATFORM_PLUGIN_PATH"])
    spec = importlib.util.find_spec("PySide6")  # located, not imported: no Qt library is loaded here
    package = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else Path()
    return package / "Qt" / "plugins" / "platforms"


def _check_plugin(kind: str, folder: Path) -> str | None:
    """Load the platform's plugin as Qt would; a library it cannot load becomes a one-line fix."""
    label = LABEL[kind]
    plugin = next((folder / n for n in PLUGIN_FILES[kind] if (folder / n).is_file()), None)
    if plugin is None:
        alternative = "set DISPLAY to use X11 (XWayland)" if kind == "wayland" else \
            "reinstall it: pip install --force-reinstall pyside6-essentials"
        return f"PySide6 has no {label} plugin in {folder}; {alternative}, or {HEADLESS}"
    try:
        ctypes.CDLL(str(plugin), mode=os.RTLD_LAZY | os.RTLD_LOCAL)  # what QLibrary does; resolves RPATH and all
    except OSError as exc:
        return library_problem(label, str(exc).splitlines()[0] if str(exc) else "")
    return None


def library_problem(label: str, loader_error: str) -> str:
    """The one line for a plugin the dynamic loader refused, from the loader's message."""
    missing = _NOT_FOUND.match(loader_error)
    if missing:
        soname = os.path.basename(missing["lib"])
        package = DEBIAN_PACKAGES.get(soname)
        fix = f"sudo apt-get install {package}" if package else f"install the package that provides {soname}"
        return f"Qt's {label} plugin needs {soname}, which is not installed; {fix} (or {HEADLESS})"
    broken = _BROKEN.match(loader_error)
    if broken and os.path.basename(broken["path"]) in DEBIAN_PACKAGES:
        path, package = broken["path"], DEBIAN_PACKAGES[os.path.basename(broken["path"])]
        return (f"Qt's {label} plugin cannot load {path} ({broken['why']}); remove that file "
                f"or reinstall it: sudo apt-get install --reinstall {package} (or {HEADLESS})")
    return (f"Qt's {label} plugin cannot be loaded ({loader_error}); "
            f"reinstall PySide6: pip install --force-reinstall pyside6-essentials (or {HEADLESS})")


def _xcb_problem(env: Mapping[str, str], folder: Path) -> str | None:
    """Load the X11 plugin, then connect to the X server with libxcb (as Qt does: DISPLAY, XAUTHORITY,
    local or TCP)."""
    display = env.get("DISPLAY", "")
    if not display:
        return NO_DISPLAY
    if problem := _check_plugin("xcb", folder):
        return problem
    xcb = ctypes.CDLL("libxcb.so.1")  # loadable: the plugin that needs it just loaded
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(os.fsencode(display), None)  # never NULL: an error object at worst
    try:
        failed = xcb.xcb_connection_has_error(connection)
    finally:
        xcb.xcb_disconnect(connection)
    if failed:
        return (f"cannot open the X display {display} (no X server there, or it refused the "
                f"connection); fix DISPLAY, or {HEADLESS}")
    return None


def _wayland_problem(env: Mapping[str, str], folder: Path) -> str | None:
    """Load the Wayland plugin, then connect to the compositor with libwayland-client (WAYLAND_DISPLAY
    in XDG_RUNTIME_DIR)."""
    if problem := _check_plugin("wayland", folder):
        return problem
    if env.get("WAYLAND_SOCKET"):
        return None  # an inherited socket: connecting here would use it up before Qt gets it
    name = env.get("WAYLAND_DISPLAY") or "wayland-0"
    if not os.path.isabs(name) and not env.get("XDG_RUNTIME_DIR"):  # libwayland would print its own error
        return (f"cannot connect to the Wayland display {name}: XDG_RUNTIME_DIR is unset; "
                f"set it, or set DISPLAY to use X11; or {HEADLESS}")
    wayland = ctypes.CDLL("libwayland-client.so.0")
    wayland.wl_display_connect.restype = ctypes.c_void_p
    wayland.wl_display_connect.argtypes = [ctypes.c_char_p]
    wayland.wl_display_disconnect.argtypes = [ctypes.c_void_p]
    connection = wayland.wl_display_connect(os.fsencode(name))
    if not connection:
        return (f"cannot connect to the Wayland display {name} (check WAYLAND_DISPLAY and "
                f"XDG_RUNTIME_DIR), or set DISPLAY to use X11; or {HEADLESS}")
    wayland.wl_display_disconnect(connection)
    return None
