"""What is made of stored records: what was collected, diffs, Markdown, verdicts, redaction, opt-out
advice and the demo data.
"""
