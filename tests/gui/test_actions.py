"""The actions and menus built from inspector.actions' tables: the menu bar, the table's context menu,
the toolbars and the window-wide shortcuts, exactly as the window offers them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from inspector.actions import ACTIONS, MENUS, MODE_ACTIONS, WINDOW_SHORTCUTS
from inspector.window import MainWindow


def entries(actions: list[QAction]) -> list[object]:
    """Menu entries as text [shortcut], "-" for a separator, (title, entries) for a submenu."""
    out: list[object] = []
    for action in actions:
        menu = action.menu()
        if action.isSeparator():
            out.append("-")
        elif isinstance(menu, QMenu):
            out.append((action.text(), entries(menu.actions())))
        else:
            shortcut = action.shortcut().toString()
            out.append(f"{action.text()} [{shortcut}]" if shortcut else action.text())
    return out


def test_the_menu_bar_offers_every_action_in_its_place(window):
    menus = [(action.text(), entries(action.menu().actions())) for action in window.menuBar().actions()]
    assert menus == [
        ("&File", ["Open app in routed browser… [Ctrl+B]", "-", "Import HAR… [Ctrl+O]", "Export… [Ctrl+E]", "-",
                   "Save window as PNG…", "Save lower pane as PNG…", "-", "New session [Ctrl+N]", "Clear… [Ctrl+L]",
                   "-", "Quit"]),
        ("&Edit", ["Filter… [Ctrl+F]", "-", "Copy decoded JSON [Ctrl+C]", "Copy raw URL [Ctrl+Shift+U]",
                   "Copy curl command [Ctrl+Shift+C]", "Copy record as JSON [Ctrl+Alt+C]",
                   "Copy as Markdown [Ctrl+Shift+M]", "-", "Compare the two selected [Ctrl+D]",
                   "Delete selected records [Del]"]),
        ("&View", ["Details [Ctrl+1]", "Opt-out check [Ctrl+2]", "Compare [Ctrl+3]", "-", "Follow newest", "Timeline",
                   "-", "Redact [Ctrl+Shift+R]", "Presentation mode [Ctrl+Shift+P]",
                   ("Theme", ["System", "Light", "Dark"])]),
        ("&Server", ["Stop server", "Change ports…", "Routing help… [F1]", "-",
                     "Open app in routed browser… [Ctrl+B]", "Compose beacon… [Ctrl+Shift+N]"]),
        ("&Help", ["Routing help… [F1]", "About refine Telemetry Inspector"]),
    ]
    assert len(MENUS) == 5


def test_the_tables_context_menu_and_its_focus_only_shortcuts(window):
    assert window.table.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
    assert entries(window.table.actions()) == [
        "Copy decoded JSON [Ctrl+C]", "Copy raw URL [Ctrl+Shift+U]", "Copy curl command [Ctrl+Shift+C]",
        "Copy record as JSON [Ctrl+Alt+C]", "Copy as Markdown [Ctrl+Shift+M]", "Compare the two selected [Ctrl+D]",
        "Delete selected records [Del]"]
    # Copy and Delete never fire from the filter box: only while the table has focus.
    table_only = [a.text() for a in window.table.actions()
                  if a.shortcutContext() == Qt.ShortcutContext.WidgetWithChildrenShortcut]
    assert table_only == ["Copy decoded JSON", "Delete selected records"]


def test_the_toolbars_and_the_window_wide_shortcuts(window):
    def bar(toolbar) -> list[str]:
        return ["-" if a.isSeparator() else a.text() or toolbar.widgetForAction(a).objectName() or
                toolbar.widgetForAction(a).text() for a in toolbar.actions()]

    assert bar(window.main_toolbar) == ["Details", "Opt-out check", "Compare", "-", "Open app in routed browser…",
                                        "Compose beacon…", "-", "Import HAR…", "Export…", "-", "redactBox"]
    assert bar(window.toolbar) == ["filter", "kindFilter", "statusFilter", "sessionFilter", "-", "Follow newest", "-",
                                   "New session", "Clear…"]
    assert [a.text() for a in window.actions()] == [
        "Filter…", "Copy raw URL", "Copy curl command", "Copy record as JSON", "Copy as Markdown", "New session",
        "Clear…", "Routing help…", "Quit", "Open app in routed browser…", "Compose beacon…", "Import HAR…",
        "Export…", "Redact", "Presentation mode", "Compare the two selected", "Details", "Opt-out check", "Compare"]
    assert "modes" in WINDOW_SHORTCUTS


def test_every_action_spec_is_a_typed_window_attribute_with_a_handler_that_runs(window, qtbot):
    assert {spec.id for spec in ACTIONS} <= set(MainWindow.__annotations__)
    assert all(isinstance(getattr(window, spec.id), QAction) for spec in ACTIONS)
    assert list(window.mode_actions) == [spec.id for spec in MODE_ACTIONS] == ["details", "optout", "compare"]
    window.compare_selected_action.trigger()  # a handler with arguments: set_mode("compare")
    assert window.mode == "compare" and window.mode_actions["compare"].isChecked()
    window.timeline_action.setChecked(False)  # on_toggled reaches into a part: view_options.show_timeline
    assert window.settings.value("view/timeline") in (False, "false") and window.timeline.isHidden()
    window.filter_edit.setText("chrome")
    window.find_action.trigger()  # a dotted handler: toolbar.focus_filter selects the filter's text
    assert window.filter_edit.selectedText() == "chrome"
