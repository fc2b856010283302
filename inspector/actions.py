"""The window's actions and menus, declared as data and built from it.

:data:`ACTIONS` lists every action: the window attribute it becomes, its text, shortcut, the
window method it runs, and whether it is a check. :data:`MENUS`, :data:`TABLE_MENU`,
:data:`MAIN_TOOLBAR` and :data:`WINDOW_SHORTCUTS` say where each appears, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QCheckBox, QMenu, QToolBar

from inspector.widgets import theme
from mockserver.core.config import DISPLAY_NAME

if TYPE_CHECKING:
    from inspector.window import MainWindow

Shortcut = QKeySequence.StandardKey | str | None
SEPARATOR = "-"
StandardKey = QKeySequence.StandardKey


@dataclass(frozen=True)
class ActionSpec:
    """One action of the window.

    ``id`` is the window attribute the action becomes. ``handler`` names the window method that
    ``triggered`` runs (a dotted name reaches into a part, e.g. ``detail.copy_json``); with
    ``args`` it is called with exactly those (``triggered``'s checked flag is dropped).
    ``on_toggled`` names the method a checkable action's ``toggled`` runs.
    """

    id: str
    text: str
    handler: str | None = None
    shortcut: Shortcut = None
    tip: str = ""
    args: tuple[Any, ...] | None = None
    checkable: bool = False
    checked: bool = False
    on_toggled: str | None = None
    table_only: bool = False  # the shortcut acts only while the table has focus


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("find_action", "Filter…", "toolbar.focus_filter", StandardKey.Find),
    ActionSpec("copy_json_action", "Copy decoded JSON", "detail.copy_json", StandardKey.Copy, table_only=True),
    ActionSpec("copy_url_action", "Copy raw URL", "detail.copy_url", "Ctrl+Shift+U"),
    ActionSpec("copy_curl_action", "Copy curl command", "detail.copy_curl", "Ctrl+Shift+C"),
    ActionSpec("copy_record_action", "Copy record as JSON", "detail.copy_record", "Ctrl+Alt+C"),
    ActionSpec("copy_markdown_action", "Copy as Markdown", "detail.copy_markdown", "Ctrl+Shift+M",
               tip="Copy the \"What was collected\" card as Markdown tables, in the docs page's format"),
    ActionSpec("compare_selected_action", "Compare the two selected", "set_mode", "Ctrl+D", args=("compare",),
               tip="Field-level differences between the two selected records"),
    ActionSpec("delete_action", "Delete selected records", "selection.delete_selected", StandardKey.Delete,
               table_only=True),
    ActionSpec("new_session_action", "New session", "new_session", "Ctrl+N",
               tip="Group the next records in a new session"),
    ActionSpec("clear_action", "Clear…", "clear_all", "Ctrl+L",
               tip="Delete every record from the database (asks first)"),
    ActionSpec("follow_action", "Follow newest", tip="Keep the newest record in view as records arrive",
               checkable=True, checked=True),
    ActionSpec("timeline_action", "Timeline", tip="Show requests over time above the table",
               checkable=True, checked=True, on_toggled="view_options.show_timeline"),
    ActionSpec("start_action", "Stop server", "toggle_server"),
    ActionSpec("ports_action", "Change ports…", "server_panel.change_ports"),
    ActionSpec("routing_action", "Routing help…", "show_routing_help", StandardKey.HelpContents),
    ActionSpec("browser_action", "Open app in routed browser…", "open_routed_browser", "Ctrl+B", args=(),
               tip="Start Chrome/Chromium/Edge with telemetry.refine.dev routed to this inspector and open your app"),
    ActionSpec("compose_action", "Compose beacon…", "show_composer", "Ctrl+Shift+N",
               tip="Send the exact beacon @refinedev/core sends for inputs you choose"),
    ActionSpec("import_action", "Import HAR…", "import_har", StandardKey.Open, args=(),
               tip="Decode the telemetry.refine.dev requests in a HAR file saved from "
                   "DevTools (or drop the file on the window)"),
    ActionSpec("export_action", "Export…", "show_export_dialog", "Ctrl+E",
               tip="Write all, filtered or selected records as JSON, NDJSON, CSV or HAR"),
    ActionSpec("save_window_action", "Save window as PNG…", "save_png", args=("window",),
               tip="A picture of the whole window"),
    ActionSpec("save_card_action", "Save lower pane as PNG…", "save_png", args=("card",),
               tip="A picture of the lower pane only: the detail card, the opt-out verdict or the comparison"),
    ActionSpec("redact_action", "Redact", shortcut="Ctrl+Shift+R", checkable=True, on_toggled="set_redaction",
               tip="Show IP addresses, hostnames, emails and projectIds as stable pseudonyms in the table, the "
                   "details, copies and exports (the database keeps the real values)"),
    ActionSpec("presentation_action", "Presentation mode", shortcut="Ctrl+Shift+P", checkable=True,
               on_toggled="set_presentation", tip="Larger text everywhere, for screen sharing and projectors"),
    ActionSpec("about_action", f"About {DISPLAY_NAME}", "show_about"),
    ActionSpec("quit_action", "Quit", "close", StandardKey.Quit),
)

# The lower pane's modes, one exclusive checkable action each (window.mode_actions).
MODE_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("details", "Details", "set_mode", "Ctrl+1", args=("details",), checkable=True,
               tip="The selected record: what was collected, JSON, raw request"),
    ActionSpec("optout", "Opt-out check", "set_mode", "Ctrl+2", args=("optout",), checkable=True,
               tip="Watch from now on, reload your app: PASS when nothing is sent, FAIL with what was"),
    ActionSpec("compare", "Compare", "set_mode", "Ctrl+3", args=("compare",), checkable=True,
               tip="Select two records: their field-level differences"),
)
MODES = tuple(spec.id for spec in MODE_ACTIONS)

# Menu entries: action ids, SEPARATOR, "modes" (every mode action) or "themes" (a Theme submenu).
MENUS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("&File", ("browser_action", SEPARATOR, "import_action", "export_action", SEPARATOR, "save_window_action",
               "save_card_action", SEPARATOR, "new_session_action", "clear_action", SEPARATOR, "quit_action")),
    ("&Edit", ("find_action", SEPARATOR, "copy_json_action", "copy_url_action", "copy_curl_action",
               "copy_record_action", "copy_markdown_action", SEPARATOR, "compare_selected_action", "delete_action")),
    ("&View", ("modes", SEPARATOR, "follow_action", "timeline_action", SEPARATOR, "redact_action",
               "presentation_action", "themes")),
    ("&Server", ("start_action", "ports_action", "routing_action", SEPARATOR, "browser_action", "compose_action")),
    ("&Help", ("routing_action", "about_action")),
)
# Copy and Delete act only while the table has focus (so they never
# fire from the filter box); all of these form the table's context menu.
TABLE_MENU = ("copy_json_action", "copy_url_action", "copy_curl_action", "copy_record_action",
              "copy_markdown_action", "compare_selected_action", "delete_action")
MAIN_TOOLBAR = ("modes", SEPARATOR, "browser_action", "compose_action", SEPARATOR, "import_action",
                "export_action", SEPARATOR)
# Actions whose shortcuts work anywhere in the window (not only from the menu bar).
WINDOW_SHORTCUTS = ("find_action", "copy_url_action", "copy_curl_action", "copy_record_action",
                    "copy_markdown_action", "new_session_action", "clear_action", "routing_action", "quit_action",
                    "browser_action", "compose_action", "import_action", "export_action", "redact_action",
                    "presentation_action", "compare_selected_action", "modes")


def _handler(window: MainWindow, name: str) -> Callable[..., object]:
    target: Any = window
    for part in name.split("."):
        target = getattr(target, part)
    return target


def make_action(window: MainWindow, spec: ActionSpec) -> QAction:
    """A QAction for ``spec``, parented to ``window`` and connected to its handlers."""
    action = QAction(spec.text, window)
    if spec.shortcut is not None:
        action.setShortcut(QKeySequence(spec.shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut if spec.table_only
                                  else Qt.ShortcutContext.WindowShortcut)
    if spec.tip:
        action.setToolTip(spec.tip)
        action.setStatusTip(spec.tip)
    if spec.handler is not None:
        slot = _handler(window, spec.handler)
        if spec.args is None:
            action.triggered.connect(slot)
        else:
            args = spec.args
            action.triggered.connect(lambda _=False: slot(*args))
    if spec.checkable:
        action.setCheckable(True)
        action.setChecked(spec.checked)
    if spec.on_toggled is not None:
        action.toggled.connect(_handler(window, spec.on_toggled))
    return action


def build_actions(window: MainWindow) -> None:
    """Create every action as a window attribute (plus ``theme_actions``, ``mode_actions``,
    ``mode_group``) and the table's context menu."""
    for spec in ACTIONS:
        setattr(window, spec.id, make_action(window, spec))
    for action_id in TABLE_MENU:
        window.table.addAction(getattr(window, action_id))
    window.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
    window.theme_actions = {}
    for name in theme.THEMES:
        window.theme_actions[name] = make_action(
            window, ActionSpec(name, name.capitalize(), "set_theme", args=(name,), checkable=True))
    window.mode_group = QActionGroup(window)
    window.mode_group.setExclusive(True)
    window.mode_actions = {}
    for spec in MODE_ACTIONS:
        action = make_action(window, spec)
        window.mode_group.addAction(action)
        window.mode_actions[spec.id] = action
    window.mode_actions["details"].setChecked(True)


def _actions_of(window: MainWindow, entry: str) -> list[QAction]:
    if entry == "modes":
        return list(window.mode_actions.values())
    return [getattr(window, entry)]


def _fill(window: MainWindow, target: QMenu | QToolBar, entries: tuple[str, ...]) -> None:
    for entry in entries:
        if entry == SEPARATOR:
            target.addSeparator()
        elif entry == "themes" and isinstance(target, QMenu):
            themes = target.addMenu("Theme")
            for action in window.theme_actions.values():
                themes.addAction(action)
        else:
            for action in _actions_of(window, entry):
                target.addAction(action)


def build_toolbars(window: MainWindow) -> None:
    """The follow and redact check boxes, the filter bar's session buttons and the main toolbar."""
    # A check box reads as on/off in both themes (a checked tool button barely does in dark).
    window.follow_box = _mirror_box(window.follow_action, "Follow newest")
    window.follow_action.toggled.connect(lambda on: window._on_rows_appended(1) if on else None)
    window.toolbar.addWidget(window.follow_box)
    window.toolbar.addSeparator()
    window.toolbar.addAction(window.new_session_action)
    window.toolbar.addAction(window.clear_action)

    main = QToolBar("Main")
    main.setObjectName("mainBar")
    main.setMovable(False)
    main.setFloatable(False)
    main.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    _fill(window, main, MAIN_TOOLBAR)
    window.redact_box = _mirror_box(window.redact_action, "Redact", name="redactBox")
    main.addWidget(window.redact_box)
    window.main_toolbar = main
    window.insertToolBar(window.toolbar, main)
    window.insertToolBarBreak(window.toolbar)


def _mirror_box(action: QAction, text: str, name: str = "") -> QCheckBox:
    """A check box that mirrors the checkable ``action`` both ways."""
    box = QCheckBox(text)
    if name:
        box.setObjectName(name)
    box.setToolTip(action.toolTip())
    box.setChecked(action.isChecked())
    box.toggled.connect(action.setChecked)
    action.toggled.connect(box.setChecked)
    return box


def build_menus(window: MainWindow) -> None:
    """The menu bar from :data:`MENUS`; the shortcuts of :data:`WINDOW_SHORTCUTS` work window-wide."""
    bar = window.menuBar()
    for title, entries in MENUS:
        _fill(window, bar.addMenu(title), entries)
    window.addActions([action for entry in WINDOW_SHORTCUTS for action in _actions_of(window, entry)])
