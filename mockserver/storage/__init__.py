"""Where records live: the SQLite journal, the recorder that commits each request, private files, and
record selection.
"""
