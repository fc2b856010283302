"""The export dialog: which records, which format, which file, redacted or not."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from inspector.widgets.plaintext import plain_label
from mockserver.formats.export import EXTENSIONS, FORMATS

FORMAT_LABELS = {"json": "JSON (array of records)", "ndjson": "NDJSON (one record per line)",
                 "csv": "CSV (the table's columns, problems, notes)", "har": "HAR 1.2 (requests as they arrived)"}
SCOPES = ("all", "shown", "selected")


class ExportDialog(QDialog):
    """Which records (all / shown by the filter / selected), which format, which file, redacted or not."""

    def __init__(self, counts: dict[str, int], *, redact: bool, folder: str, fmt: str = "json",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export records")
        self.setObjectName("exportDialog")
        self.counts = counts
        form = QFormLayout(self)
        self.scopes: dict[str, QRadioButton] = {}
        group = QButtonGroup(self)
        box = QVBoxLayout()
        labels = {"all": "All records", "shown": "The records the table shows (filters applied)",
                  "selected": "The selected records"}
        for scope in SCOPES:
            count = counts.get(scope, 0)
            button = QRadioButton(f"{labels[scope]} ({count})")
            button.setEnabled(count > 0)
            group.addButton(button)
            box.addWidget(button)
            self.scopes[scope] = button
        preferred = "selected" if counts.get("selected", 0) > 1 else (
            "shown" if counts.get("shown", 0) != counts.get("all", 0) else "all")
        self.scopes[preferred if counts.get(preferred, 0) else "all"].setChecked(True)
        form.addRow("Records:", box)
        self.format = QComboBox()
        self.format.setObjectName("format")
        for name in FORMATS:
            self.format.addItem(FORMAT_LABELS[name], name)
        self.format.setCurrentIndex(max(0, self.format.findData(fmt)))
        form.addRow("Format:", self.format)
        row = QHBoxLayout()
        self.path = QLineEdit(str(Path(folder) / f"telemetry{EXTENSIONS[self.fmt]}"))
        self.path.setObjectName("path")
        self.path.setMinimumWidth(380)
        row.addWidget(self.path, 1)
        choose = QPushButton("Choose…")
        choose.setAutoDefault(False)
        choose.clicked.connect(self.choose)
        row.addWidget(choose)
        form.addRow("File:", row)
        self.redact = QCheckBox("Redact: IP addresses, hostnames, emails and projectIds as pseudonyms "
                                "(the same tokens the window shows)")
        self.redact.setChecked(redact)
        form.addRow(self.redact)
        self.message = plain_label()
        self.message.setWordWrap(True)
        form.addRow(self.message)
        self.format.currentIndexChanged.connect(self._follow_format)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    @property
    def fmt(self) -> str:
        """The chosen format name (json, ndjson, csv, har)."""
        return str(self.format.currentData())

    @property
    def scope(self) -> str:
        """all, shown or selected."""
        return next(name for name, button in self.scopes.items() if button.isChecked())

    def _follow_format(self) -> None:
        """Change a known extension of the file name to the new format's."""
        path = Path(self.path.text())
        if path.suffix.lower() in EXTENSIONS.values():
            self.path.setText(str(path.with_suffix(EXTENSIONS[self.fmt])))

    def choose(self) -> None:
        """Pick the file with the platform's save dialog."""
        ext = EXTENSIONS[self.fmt]
        name, _ = QFileDialog.getSaveFileName(self, "Export records", self.path.text(),
                                              f"{self.fmt.upper()} (*{ext});;All files (*)")
        if name:
            self.path.setText(name)

    def problem(self) -> str | None:
        """Why the form cannot be exported as it is (one line), or None."""
        text = self.path.text().strip()
        if not text:
            return "Choose a file to write."
        target = Path(text).expanduser()
        if target.is_dir():
            return f"{target} is a folder: add a file name."
        if not target.parent.is_dir():
            return f"No folder {target.parent}."
        return None

    def accept(self) -> None:
        problem = self.problem()
        if problem:
            self.message.setText(problem)
            return
        super().accept()

    def values(self) -> tuple[str, str, str, bool]:
        """(scope, format, path, redact)."""
        return self.scope, self.fmt, str(Path(self.path.text().strip()).expanduser()), self.redact.isChecked()
