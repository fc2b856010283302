"""The window's background jobs: export, HAR import, saving a PNG, starting a routed browser, and
the composer (whose send is a job too).

Each runs as a :class:`inspector.jobs.Job` on the window's thread pool, with a progress dialog
that can cancel it when it can take long; a failure is reported with one line. Widgets are
read (a picture grabbed, a file asked for) on the GUI thread before the work starts.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QProgressDialog

from inspector.dialogs.composer import ComposerDialog
from inspector.dialogs.export import ExportDialog
from inspector.jobs import Job
from inspector.panes.routeproof import Launched
from inspector.widgets.plaintext import plain_label
from mockserver.core.text import plural
from mockserver.formats.export import ExportError, export_records
from mockserver.formats.har import HarError, ImportResult, import_har
from mockserver.reach.browser import BrowserProcess
from mockserver.records.view import RecordFilter
from mockserver.storage.store import StoreError

if TYPE_CHECKING:
    from inspector.window import MainWindow

log = logging.getLogger(__name__)

DEFAULT_APP_URL = "http://localhost:5173/"


def app_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be opened as the app (one line), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a bad port
    except ValueError as exc:
        return f"Not a usable URL {url!r}: {exc}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"Not an app URL: {url!r}; enter one like {DEFAULT_APP_URL}"
    return None


class WindowJobs:
    """Starts and follows the window's jobs; ``jobs`` are the running ones, ``last_job`` the newest."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.jobs: list[Job] = []
        self.last_job: Job | None = None
        self._imports: list[str] = []  # HAR files waiting for the running import
        # Routed browsers this window started (appended by a worker, stopped on quit).
        self.browsers: list[BrowserProcess] = []
        self.browsers_lock = threading.Lock()
        self.composer: ComposerDialog | None = None
        self._before_send: int | None = None  # the last record id before the composer sent

    def run(self, job: Job, label: str | None = None, *, error_title: str | None = None) -> Job:
        """Start ``job`` on the window's pool; with ``label``, a progress dialog that can cancel it.

        A failure is reported as ``error_title`` (default "<job> failed") with the job's one-line message.
        """
        self.jobs.append(job)
        self.last_job = job
        job.failed.connect(lambda message: self.window.report_error(error_title or f"{job.title} failed", message))
        job.finished.connect(lambda: self.jobs.remove(job) if job in self.jobs else None)
        if label is not None:
            dialog = QProgressDialog("", "Cancel", 0, 0, self.window)
            dialog.setLabel(plain_label(label))  # its own label guesses HTML; a file name is untrusted
            dialog.setWindowTitle(job.title)
            dialog.setMinimumDuration(400)  # quick jobs never flash a dialog
            dialog.setAutoClose(False)
            dialog.setAutoReset(False)
            dialog.setWindowModality(Qt.WindowModality.WindowModal)
            dialog.canceled.connect(job.cancel)

            def progressed(done: int, total: int) -> None:
                if total > 0:
                    dialog.setMaximum(total)
                    dialog.setValue(min(done, total))
                self.window.statusBar().showMessage(f"{label} {done}/{total}" if total else label, 2000)

            def finished() -> None:
                dialog.canceled.disconnect(job.cancel)
                dialog.close()
                dialog.deleteLater()

            job.progressed.connect(progressed)
            job.finished.connect(finished)
            job.progress_dialog = dialog  # type: ignore[attr-defined]  # the dialog lives as long as its job
        return job.start(self.window.pool)

    # -- export -----------------------------------------------------------------

    def _export_counts(self) -> dict[str, int]:
        model = self.window.model
        return {"all": model.total, "shown": model.rowCount(), "selected": len(self.window.selected_ids())}

    def show_export_dialog(self) -> ExportDialog:
        """The export dialog (all / shown / selected; JSON, NDJSON, CSV, HAR; redaction)."""
        folder = str(self.window.settings.value("export/folder", "") or Path.home())
        fmt = str(self.window.settings.value("export/format", "json") or "json")
        dialog = ExportDialog(self._export_counts(), redact=self.window.redactor is not None, folder=folder, fmt=fmt,
                              parent=self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        def accepted() -> None:
            scope, fmt, path, redact = dialog.values()
            self.export_to(path, fmt, scope, redact)

        dialog.accepted.connect(accepted)
        dialog.open()
        self.export_dialog = dialog
        return dialog

    def _selection_for(self, scope: str) -> tuple[RecordFilter, int]:
        if scope == "selected":
            ids = tuple(self.window.selected_ids())
            return RecordFilter(ids=ids), len(ids)
        if scope == "shown" and self.window.model.filtered:  # the table's own rules select the same records
            return self.window.model.record_filter, self.window.model.rowCount()
        return RecordFilter(), self.window.model.total

    def export_to(self, path: str, fmt: str, scope: str = "all", redact: bool = False) -> Job | None:
        """Write the records of ``scope`` (all, shown, selected) to ``path`` on a worker thread."""
        selection, total = self._selection_for(scope)
        if scope == "selected" and not total:
            self.window.report_error("Nothing to export", "No record is selected.")
            return None
        self.window.settings.setValue("export/folder", str(Path(path).parent))
        self.window.settings.setValue("export/format", fmt)
        # The window's own redactor: the file uses the same pseudonyms the screen shows.
        redactor = self.window.view_options.run_redactor() if redact else None
        store = self.window.store

        def work(progress: Callable[[int, int], bool]) -> int:
            return export_records(selection.records(store), fmt, path, redactor=redactor, total=total,
                                  progress=progress)

        job = Job("Export", work, expected=(ExportError, StoreError))
        job.succeeded.connect(lambda count: self.window.flash(
            f"Exported {plural(count, 'record')}{', redacted,' if redact else ''} "
            f"as {fmt.upper()} to {path}"))
        job.cancelled.connect(lambda: self.window.flash("Export cancelled; no file was written"))
        return self.run(job, f"Exporting {plural(total, 'record')}…", error_title="Cannot export")

    # -- HAR import ---------------------------------------------------------------

    def import_har(self, path: str | None = None) -> Job | None:
        """Import a HAR file (asks for one when ``path`` is None) on a worker thread."""
        if path is None:
            folder = str(self.window.settings.value("import/folder", "") or Path.home())
            path, _ = QFileDialog.getOpenFileName(self.window, "Import HAR", folder, "HAR files (*.har);;All files (*)")
            if not path:
                return None
        if self.window.optout.watching:
            self.window.report_error("Not imported", "An opt-out check is running: imported records would count "
                                                     "as sent. Stop the check first.")
            return None
        if any(job.title == "Import" and not job.done for job in self.jobs):
            self._imports.append(path)  # one import at a time; this one follows
            self.window.flash(f"{Path(path).name} will be imported next")
            return None
        self.window.settings.setValue("import/folder", str(Path(path).parent))
        store = self.window.store

        def work(progress: Callable[[int, int], bool]) -> ImportResult:
            return import_har(store, path, progress=progress)  # checks the whole file before writing

        job = Job("Import", work, expected=(HarError, StoreError))
        job.succeeded.connect(self._on_imported)
        job.finished.connect(self._next_import)
        job.cancelled.connect(lambda: self.window.flash("Import cancelled; what was imported so far stays"))
        return self.run(job, f"Importing {Path(path).name}…", error_title="Cannot import")

    def _on_imported(self, result: ImportResult) -> None:
        self.window.bridge.drain()
        self.window.model.fetch_new()
        self.window.toolbar.refresh_sessions()  # the import's own session (added without becoming the current one)
        text = result.summary()
        if result.warnings:
            text += f" ({result.warnings[0]}{' …' if len(result.warnings) > 1 else ''})"
        if result.imported == 0:
            text += ": no request to telemetry.refine.dev in this file"
        self.window.flash(text)
        self.window.statusBar().showMessage(text, 10000)
        if result.ids and not self.window.select_record(result.ids[0]):
            self.window.statusBar().showMessage(text + " (hidden by the filter)", 10000)

    def _next_import(self) -> None:
        if self._imports and not self.window.closing:
            self.import_har(self._imports.pop(0))

    def open_routed_browser(self, url: str | None = None) -> Job | None:
        """Start Chrome/Chromium/Edge or Firefox routed to this inspector's HTTPS listener, at the app ``url``.

        Asks for the URL (remembering the last one) when not given.
        """
        title = "Cannot open a routed browser"
        listening = self.window.server.listening if self.window.server is not None else None
        if listening is None:
            self.window.report_error(title, "The server is stopped: start it first (Server ▸ Start server).")
            return None
        if not listening.https_port or not listening.spki_pin or not listening.https_url:
            self.window.report_error(title, "HTTPS is off, and browsers send refine's beacon only over HTTPS: "
                                            "turn it on in Server ▸ Change ports.")
            return None
        if url is None:
            last = str(self.window.settings.value("browser/url", DEFAULT_APP_URL) or DEFAULT_APP_URL)
            url, ok = QInputDialog.getText(self.window, "Open app in routed browser",
                                           "Your app's URL (the browser's telemetry goes to this inspector):",
                                           QLineEdit.EchoMode.Normal, last)
            if not ok:
                return None
        url = url.strip()
        problem = app_url_problem(url)
        if problem:
            self.window.report_error(title, problem)
            return None
        self.window.settings.setValue("browser/url", url)
        https_port, pin = listening.https_port, listening.spki_pin
        host = urlsplit(listening.https_url).hostname or "127.0.0.1"

        certificate = getattr(self.window.server, "certificate", None)  # its CA: a Firefox imports it
        ca_pem = certificate.ca_cert.read_bytes if certificate is not None else None
        job = self.window.route_prover.launch(url, https_port, pin, host, http_port=listening.port,
                                              ca_pem=ca_pem)  # an empty tab, proven, then the app
        job.succeeded.connect(lambda launched: self._on_launched(launched, url, listening.https_url))
        return self.run(job, error_title=title)

    def _on_launched(self, launched: Launched, url: str, https_url: str) -> None:
        self.window.optout.note_proof(launched.route)  # a check running now was proven (or not) through it
        name = Path(launched.browser.executable).name
        if launched.route.proven:
            self.window.flash(f"Opened {name} at {url}: route proven, its telemetry goes to {https_url}; "
                        "it closes when the inspector quits")
        elif not launched.route.browser_closed:
            self.window.report_error("The routed browser's route is not proven",
                              f"{launched.route.line}. {name} stays on its empty tab; {url} was not opened.")

    def save_png(self, which: str = "window", path: str | None = None) -> Job | None:
        """Save the window (``window``) or the lower pane (``card``) as PNG (asks for a file when not given)."""
        window = self.window
        widget = window if which == "window" else self.window.bottom.currentWidget()
        if widget is None or (widget is not window and not widget.isVisibleTo(window)):
            self.window.report_error("Nothing to save", "The lower pane is not shown; select a record first.")
            return None
        if path is None:
            folder = str(self.window.settings.value("png/folder", "") or Path.home())
            name = "telemetry-inspector.png" if which == "window" else "telemetry-inspector-card.png"
            path, _ = QFileDialog.getSaveFileName(self.window, "Save as PNG", str(Path(folder) / name),
                                                  "PNG images (*.png)")
            if not path:
                return None
        if not path.lower().endswith(".png"):
            path += ".png"
        self.window.settings.setValue("png/folder", str(Path(path).parent))
        image: QImage = widget.grab().toImage()  # rendering is GUI-thread work; writing the file is not

        def work(_progress: Callable[[int, int], bool]) -> str:
            target = Path(path)
            if not target.parent.is_dir():
                raise OSError(f"no folder {target.parent}")
            temp = target.with_name(f".{target.name}.part")
            if not image.save(str(temp), "PNG"):  # type: ignore[call-overload]  # takes str; the stub says bytes
                raise OSError(f"cannot write {temp}")
            os.replace(temp, target)
            return str(target)

        job = Job("Save PNG", work, expected=(OSError,))
        job.succeeded.connect(lambda saved: self.window.flash(f"Saved {saved}"))
        return self.run(job, error_title="Cannot save the picture")

    def stop_browsers(self) -> None:
        """Close every routed browser this window started (and delete their temporary profiles)."""
        with self.browsers_lock:
            browsers = list(self.browsers)
            self.browsers.clear()  # the same list the route prover reads
        for browser in browsers:
            try:
                browser.stop(timeout=5)
            except Exception:  # quitting must not fail over a browser that is already gone
                log.warning("could not stop the routed browser %s", browser.pid, exc_info=True)

    # -- the composer ------------------------------------------------------------

    def show_composer(self) -> ComposerDialog:
        """The composer dialog (non-modal; one per window)."""
        if self.composer is None:
            self.composer = ComposerDialog(self.window.server_panel.listening_url, self.window.pool, self.window)
            self.composer.sending.connect(self._remember_last_id)
            self.composer.sent.connect(self._show_sent)
        self.composer.update_preview()
        self.composer.show()
        self.composer.raise_()
        return self.composer

    def _remember_last_id(self) -> None:
        try:
            self._before_send = self.window.store.last_id()
        except StoreError:
            self._before_send = None

    def _show_sent(self, url: str) -> None:
        """Select the record the composer's request became (matched by its exact query)."""
        query = url.partition("?")[2]
        since = self._before_send
        try:
            arrived = self.window.store.query(since=since) if since is not None else []
        except StoreError:
            arrived = []
        match = next((b for b in arrived if b.request.query == query), None)
        result = self.composer.result if self.composer is not None else None
        answer = f"{result.status} {result.reason}" if result is not None else "sent"
        if match is None or match.id is None:
            self.window.flash(f"Sent: {answer}")
            return
        self.window.selection.select_or_say(match.id)
        self.window.flash(f"Sent as #{match.id}: {answer}")
