"""'Copy as Markdown': the collected-fields card as docs-page-style tables, escaped so nothing is injected.

Rendered with markdown-it-py (CommonMark + GFM tables) and with cmark-gfm
(GitHub's own renderer, autolinks on) to check what a reader would see: the
exact values, in one table row each, and no HTML but the table's own.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mockserver.core.capture import RawRequest, capture
from mockserver.reach.compose import compose_beacon
from mockserver.records.collected import APPLICATION, CONTACT, HEADERS, collected_fields
from mockserver.records.markdown import COLUMNS, collected_markdown, escape_markdown, fields_markdown
from mockserver.records.redact import redact_record
from tests.support.helpers import CHROME_UA

markdown_it = pytest.importorskip("markdown_it")
cmarkgfm = pytest.importorskip("cmarkgfm")
from cmarkgfm.cmark import Options  # noqa: E402

DATA = Path(__file__).parent / "data"
CAPTURES = json.loads((DATA / "real_beacons.json").read_text())
TABLE_TAGS = {"table", "thead", "tbody", "tr", "th", "td", "h3", "h4", "p", "em"}


class _Cells(HTMLParser):
    """Tags used and the text of every table row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def render(markdown: str, *, gfm: bool = False) -> _Cells:
    if gfm:  # GitHub's renderer with its extensions (autolink, tagfilter…); raw HTML kept, so none can hide
        html = cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)
    else:
        html = markdown_it.MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown)
    parser = _Cells()
    parser.feed(html)
    return parser


def _beacon(project_id: str):
    request = compose_beacon(project_id=project_id, providers=["data", "router", "i18n"], resources=3,
                             encoding="node")
    return capture(RawRequest("GET", "/telemetry", request.query,
                              {"Host": "telemetry.refine.dev", "User-Agent": CHROME_UA,
                               "Referer": "http://localhost:5173/"}, peer="127.0.0.1"))


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "a|b||c",
    "`code` and ``more``",
    "line1\nline2\r\n| --- |",
    "[link](javascript:alert(1))",
    "**bold** _it_ ~~gone~~",
    "&lt;b&gt; &amp;",
    "\\|escaped pipe\\",
    "@refinedev #123 ![img](x)",
    "\u202eevil\u200b",
    "<b>x</b>",
]


# Forms only GitHub-flavoured Markdown (and GitHub after it) turns into links, math or emoji.
GFM_HOSTILE = [
    "https://evil.example/reset",
    "see HTTP://evil.example and ftp://evil.example/x",
    "www.evil.example",
    "(WWW.evil.example/path)",
    "a@evil.example",
    "reset: mailto:a@evil.example or xmpp:a@evil.example/x",
    "jane.doe+tag@mail.evil.example",
    "$x^2$ and $$y$$",
    ":smile: :+1: :-1: :100_percent:",
    "@someone/team #42 GH-42",
]


@pytest.mark.parametrize("gfm", [False, True], ids=["commonmark", "gfm"])
@pytest.mark.parametrize("value", HOSTILE + GFM_HOSTILE)
def test_hostile_values_render_literally_in_one_row(value, gfm):
    beacon = _beacon(value)
    markdown = collected_markdown(beacon)
    page = render(markdown, gfm=gfm)
    assert page.tags <= TABLE_TAGS, page.tags  # no <script>, <img>, <a>, <code>, <strong>, <del>…
    rows = {row[0]: row for row in page.rows if row}
    project = rows["projectId"]
    assert len(project) == len(COLUMNS)
    shown = project[1]
    visible = (value.replace("\n", "\\x0a").replace("\r", "\\x0d")
               .replace("\u202e", "\\u202e").replace("\u200b", "\\u200b"))
    assert shown == visible


def test_sections_in_the_docs_page_order_with_docs_columns():
    entry = next(e for e in CAPTURES if e["scenario"] == "projectid-html" and e["refine_version"] == "4.58.0")
    request = entry["requests"][0]
    beacon = capture(RawRequest("GET", request["path"], request["raw_query"], request["headers"], scheme="https"))
    beacon.id = 7
    markdown = collected_markdown(beacon)
    headings = re.findall(r"^#### (.+)$", markdown, flags=re.M)
    assert headings == [APPLICATION, HEADERS, CONTACT]
    assert markdown.startswith("### What was collected\\: \\#<!-- -->7 beacon GET /telemetry")
    assert "| " + " | ".join(COLUMNS) + " |" in markdown
    page = render(markdown)
    rows = {row[0]: row for row in page.rows if row}
    assert rows["providers.router"][1:4] == ["true", "query payload → providers.router", "yes"]
    assert rows["projectId"][1] == "<b>x</b>" and rows["projectId"][3] == "no"
    assert rows["Email address"][1] == "(not sent)"
    assert rows["Browser"][1] == "HeadlessChrome 156.0.0"
    assert "<Refine" in rows["resourceCount"][4]  # the explanation's own '<' is shown, not parsed
    assert len(page.rows) == len(collected_fields(beacon)) + 3  # plus one header row per section


def test_redacted_copy_and_without_heading():
    beacon = _beacon("acme-secret")
    markdown = collected_markdown(redact_record(beacon), heading=False)
    assert "acme" not in markdown and "127.0.0.1" not in markdown
    rows = {row[0]: row for row in render(markdown).rows if row}
    assert (rows["projectId"][1], rows["IP address"][1], rows["Hostname"][1]) == ("project-1", "ip-1", "host-1")
    assert markdown.startswith("#### ")


def test_escape_and_empty_values():
    assert escape_markdown("a|b") == "a\\|b"
    assert escape_markdown("<x>") == "\\<x\\>"
    assert escape_markdown("4.58.0") == "4.58.0"  # ordinary text stays readable
    beacon = _beacon("")
    rows = {row[0]: row for row in render(fields_markdown(collected_fields(beacon))).rows if row}
    assert rows["projectId"][1] == "(empty)"


def test_a_lone_surrogate_is_shown_escaped():
    beacon = capture(RawRequest("POST", "/cli", "", {}, b'{"command":"dev","projectId":"x\\ud800y"}'))
    markdown = collected_markdown(beacon)
    markdown.encode("utf-8")  # the clipboard gets valid text
    assert "x\\\\ud800y" in markdown


def test_gfm_forms_are_escaped_so_github_keeps_them_literal():
    """GitHub finds math, emoji, mentions and issue links after cmark: the Markdown must break them itself."""
    assert escape_markdown("$x$") == "\\$x\\$"
    assert escape_markdown(":smile:") == "\\:<!-- -->smile\\:"
    assert escape_markdown("a@evil.example") == "a\\@<!-- -->evil.example"
    assert escape_markdown("#42") == "\\#<!-- -->42"
    assert escape_markdown("www.evil.example") == "www\\.evil.example"
    assert escape_markdown("https://evil.example") == "https\\://evil.example"
    assert escape_markdown("06:00:00") == "06\\:00\\:00"  # digits between colons are no emoji name


def test_gfm_page_of_a_hostile_record_has_no_link_image_or_unescaped_form():
    beacon = _beacon(" ".join(GFM_HOSTILE))
    html = cmarkgfm.github_flavored_markdown_to_html(collected_markdown(beacon), options=Options.CMARK_OPT_UNSAFE)
    assert "<a" not in html and "<img" not in html and "href" not in html
    page = render(collected_markdown(beacon), gfm=True)
    assert page.tags <= TABLE_TAGS, page.tags
    rows = {row[0]: row for row in page.rows if row}
    assert rows["projectId"][1] == " ".join(GFM_HOSTILE)
