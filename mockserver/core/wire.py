"""What the mock puts on and accepts from the wire, shared by the live server and HAR import.

The live server answers a beacon with :data:`GIF` and refuses a request line
plus headers over :data:`MAX_HEADER_BYTES`; an imported HAR entry is answered
and refused the same way, so both live here rather than in the server.
"""

from __future__ import annotations

# The smallest transparent 1x1 GIF: what an <img> beacon expects back.
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")

MAX_HEADER_BYTES = 1024 * 1024  # beyond this cheroot answers 414 itself; below it we record
