"""One terminal line per record: what ``serve``, ``browser``, ``verify``, ``run`` and the pytest plugin print.

Every value is made terminal-safe (:func:`~mockserver.core.text.printable`): a record is untrusted input.
"""

from __future__ import annotations

from datetime import datetime

from mockserver.core.beacon import Beacon
from mockserver.core.text import plural, printable


def format_line(beacon: Beacon) -> str:
    """One human line per captured request (all values made terminal-safe)."""
    s = beacon.summary()
    when = datetime.fromisoformat(s.received_at.replace("Z", "+00:00")).astimezone().strftime("%H:%M:%S")
    head = f"{when}  #{s.id:<5} {s.kind:<10} {s.status.upper() if s.status != 'ok' else 'ok':<7} {s.method} {s.path}"
    if s.status != "ok":
        return printable(f"{head}  {'; '.join(beacon.problems)}")
    facts = []
    if s.hostname:
        facts.append(s.hostname)
    if s.version:
        facts.append(f"refine {s.version}")
    if s.resource_count is not None:
        facts.append(plural(s.resource_count, "resource"))
    if s.providers:
        facts.append(f"providers: {s.providers}")
    if s.project_id:
        facts.append(f"projectId {s.project_id}")
    if beacon.contact and beacon.contact.get("email"):
        facts.append(f"email {beacon.contact['email']}")
    browser = " on ".join(x for x in (s.browser, s.os) if x)
    if browser:
        facts.append(browser)
    if s.ip:
        facts.append(s.ip)
    dupes = [n for n in beacon.notes if n.startswith("duplicate")]
    if dupes:
        facts.append("DUPLICATE")
    return printable(f"{head}  {' · '.join(facts)}")
