"""Files in and out: JSON/NDJSON/CSV/HAR export, HAR import, progress reporting.

The export formats' names and HAR import's entry cap live here, not in ``export`` and ``har``, so
the command line can offer and describe them without loading the writers, the reader or the journal.
"""

FORMATS = ("json", "ndjson", "csv", "har")
EXTENSIONS = {"json": ".json", "ndjson": ".ndjson", "csv": ".csv", "har": ".har"}
MAX_HAR_ENTRY_CHARS = 64 * 1024 * 1024  # one HAR entry's JSON text; DevTools keeps response bodies far smaller
