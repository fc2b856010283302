"""Building the command line loads only what argparse needs: every command pays for it, ``--help`` and
``send`` included. The server, Flask, the journal and the HAR reader load when a handler runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Loaded by a handler, never by the parser (the server and its stack alone took ~120 ms).
HEAVY = ("granian", "flask", "werkzeug", "cryptography", "mockserver.serving.server", "mockserver.serving.app",
         "mockserver.storage.store", "mockserver.formats.har", "mockserver.reach.compose", "http.client")

PROBE = """
import json, sys
from mockserver.cli.main import build_parser
parser = build_parser()
parser.format_help()
for command in parser.commands.choices.values():
    command.format_help()
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_building_the_parser_and_every_help_loads_nothing_heavy():
    loaded = loaded_after(PROBE)
    assert "mockserver.cli.import_har" in loaded and "mockserver.cli.send" in loaded  # every command was built
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY) == []


def test_a_library_error_is_still_reported_in_one_line_once_its_module_is_loaded(tmp_path, capsys):
    """main() finds StoreError (and ServerError) among the loaded modules instead of importing them."""
    from mockserver.cli.main import main

    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert main(["serve", "--db", str(folder), "--port", "0", "--no-https"]) == 2
    assert capsys.readouterr().err == (f"telemetry-inspector serve: cannot write the database {folder}: unable to "
                                       "open database file\n")
