"""Files in and out: JSON/NDJSON/CSV/HAR export, HAR import, progress reporting."""
