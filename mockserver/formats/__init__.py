"""Files in and out: JSON/NDJSON/CSV/HAR export, HAR import, progress reporting.

The export formats' names live here, not in ``export``, so the command line can offer them
without loading the writers.
"""

FORMATS = ("json", "ndjson", "csv", "har")
EXTENSIONS = {"json": ".json", "ndjson": ".ndjson", "csv": ".csv", "har": ".har"}
