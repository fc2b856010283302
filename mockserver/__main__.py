"""``python -m mockserver``: the same as the ``telemetry-inspector`` command."""

import sys

from .cli import main

sys.exit(main())
