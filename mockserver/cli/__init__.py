"""The command line: one module per command, shared options and output, and the one GUI hook."""
