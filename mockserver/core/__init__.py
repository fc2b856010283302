"""The pure heart: the record, decoding, enrichment, checks and shared text rules (no I/O, no Flask, no
Qt).
"""
