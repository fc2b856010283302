"""The Markdown of ``python3 -m bench``: one writer per section, each target stated with its verdict.

The targets are issue 15's (``TARGETS``): the full pipeline at ≥ 2.5× the naive mock's
requests per second on HTTP and on HTTPS (aiming for 3×), paired within rounds, with CPU
time per request beside it; zero loss; the first beacon answered ≤ 1 s after process start for
``serve`` and for the window; the window's send → row painted p95 ≤ 100 ms idle and ≤ 250 ms at
500/s, its event loop never blocked > 100 ms at 1,000/s; and, from issue 6, the journal at
scale (open ≤ 1 s, ≤ 300 MB). The ceilings are shown for reference (the pipeline ÷ each),
without a target.
"""

from __future__ import annotations

import os

from . import startup, throughput

TARGETS = {"vs_naive": 2.5, "vs_naive_aim": 3.0, "startup_s": 1.0, "open_s": 1.0, "rss_mb": 300.0,
           "idle_p95_ms": 100.0, "load_p95_ms": 250.0, "block_ms": 100.0}

ROW_PROSE = {
    "naive": "what one writes in five minutes: a Flask app answering the GIF on werkzeug's threaded development "
             "server; no decoding, no storage. The targets are against this.",
    "ceiling": "the inspector's own stack answering a constant GIF with no work: granian's embedded server with "
               "the inspector's settings (our sockets, header timeout, head buffer), the same ASGI → WSGI bridge "
               "(beacon pool, journal pool, caps) and Flask routing every request. The pipeline skips Flask for "
               "refine's routes (its fast path), so it can come close to this row, or pass it.",
    "asgi": "granian's embedded server with the same settings and a bare ASGI callable answering the GIF: the "
            "HTTP(S) stack alone, with no bridge, threads or Flask.",
    "cheroot": "the former stack, as the inspector ran it until issue 15 (cheroot's threads, backlog and "
               "keep-alive settings, the standard library's TLS), with Flask answering the GIF: issue 6's ceiling.",
    "pipeline": "the real `python3 -m mockserver serve`: decode, enrich, check, and the SQLite commit before "
                "the answer (answered ⇒ stored).",
    "before": "the same `serve` from the checkout given with `--before`.",
}


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def _ratio_cell(ratio: float | None, paired: float | None, cpu: float | None) -> str:
    """``ratio of medians (paired); CPU`` for a table's last column."""
    if ratio is None:
        return ""
    return f"{ratio:.2f}× ({_times(paired)})" + ("" if cpu is None else f"; {cpu:.2f}×")


def _table_row(label: str, row: dict, last: str) -> str:
    cpu = row.get("median_cpu_us")
    cpu_text = "" if cpu is None else f"{cpu:,.0f} µs ({row['median_switches']:.0f})"
    return (f"| {label} | {row['median_rps']:,.0f} | {', '.join(f'{x:,}' for x in row['rps'])} | "
            f"{row['median_p50_ms']:.1f} / {row['median_p99_ms']:.1f} ms | {cpu_text} | {last} |")


def _loss(label: str, row: dict) -> str:
    return (f"{label}: {row['answered']:,} answered ({row['answered_2xx']:,} 2xx), {row['lost']} answered but not "
            f"stored, {row['phantom']} stored but never sent ({row['unanswered_in_flight']} still in flight when "
            f"the load generator stopped; the server may record those, and did: "
            f"{row['stored'] - row['answered']:,} more stored than answered)")


def _loss_line(table: dict) -> str:
    stored = [kind for kind in throughput.STORED if kind in table]
    ok = all(table[k]["lost"] == 0 and table[k]["phantom"] == 0 for k in stored)
    return "Zero loss: " + "; ".join(_loss(throughput.LABELS[k].split(":")[0].strip("`"), table[k])
                                     for k in stored) + f": {_verdict(ok)}."


def _targets_line(scheme: str, table: dict) -> list[str]:
    naive = table.get("naive", {})
    paired = naive.get("pipeline_ratio_paired_median") or naive.get("pipeline_ratio")
    if paired is None:
        return []
    aim = "reached" if paired >= TARGETS["vs_naive_aim"] else "not reached"
    cpu = naive.get("pipeline_cpu_ratio")
    lines = ["", f"Target ({scheme.upper()}): the full pipeline ≥ 2.5× the naive mock's req/s: {paired:.2f}× paired "
                 f"{_verdict(paired >= TARGETS['vs_naive'])}; the aim of 3× {aim} (ratio of the medians "
                 f"{naive['pipeline_ratio']:.2f}×; by CPU time per request {_times(cpu)}).", ""]
    refs = [f"{throughput.LABELS[k].split(':')[0]} {_times(table[k].get('pipeline_ratio_paired_median'))} "
            f"(by CPU {_times(table[k].get('pipeline_cpu_ratio'))})"
            for k in ("ceiling", "asgi", "cheroot", "before") if k in table and "pipeline_ratio" in table[k]]
    if refs:
        lines += ["For reference, the full pipeline ÷ " + "; ÷ ".join(refs) + " (paired req/s).", ""]
    return lines + [_loss_line(table), ""]


def _workers_md(scheme: str, table: dict, skipped: dict[str, str]) -> list[str]:
    head = f"**`serve --workers N` ({scheme.upper()})**, in the same rounds"
    if any(kind in skipped for kind in throughput.WORKERS):
        return [f"{head}: {skipped.get('workers1') or skipped.get('workers2')}.", ""]
    if not any(kind in table for kind in throughput.WORKERS):
        return []
    lines = [f"{head}: N worker processes sharing the listening sockets and one journal. CPU per request is summed "
             "over the parent and its worker processes.", "",
             "| `serve` | median req/s | runs (req/s) | p50 / p99 latency | CPU per request, parent + workers "
             "(context switches) | this ÷ naive: req/s (paired); CPU |", "|---|---:|---|---|---:|---:|"]
    for kind in throughput.WORKERS:
        if kind in table:
            row = table[kind]
            lines.append(_table_row(throughput.LABELS[kind], row,
                                    _ratio_cell(row.get("vs_naive"), row.get("vs_naive_paired_median"),
                                                row.get("vs_naive_cpu_ratio"))))
    scaling = table.get("workers_scaling")
    if scaling:
        lines += ["", f"Scaling, N = 2 ÷ N = 1: {_times(scaling.get('paired_median'))} paired (ratio of the medians "
                      f"{scaling['ratio']:.2f}×; CPU per request N = 1 ÷ N = 2: {_times(scaling.get('cpu_ratio'))}). "
                      f"This machine has {os.cpu_count() or '?'} cores, shared with the load generator."]
    return lines + [""]


def throughput_md(summary: dict, seconds: float, rounds: int, connections: int, threads: int, tool: str,
                  skipped: dict[str, str] | None = None) -> str:
    """The throughput section: what each row is, a table per scheme, the targets, the ``--workers`` rows."""
    skipped = skipped or {}
    shown = [k for k in (*throughput.COMPARED, "pipeline") if any(k in table for table in summary.values())]
    lines = [f"Load: {tool}, {threads} thread(s), {connections} keep-alive connections, {seconds:g} s per run after "
             f"a warm-up, {rounds} round(s) interleaved (every row below in each round, in a rotating order); "
             "each server its own process, fresh per run. *Paired*: the median of the ratios within each round. "
             "*CPU per request*: user + system time of the server's process tree ÷ answered requests (in brackets "
             "its context switches per request); steadier than req/s on a shared machine.", "",
             "The rows:", ""]
    lines += [f"- **{throughput.LABELS[k].split(':')[0]}**: {ROW_PROSE[k]}" for k in shown]
    lines += [f"- **{throughput.LABELS[k]}**: {reason}." for k, reason in skipped.items()
              if k not in throughput.WORKERS]
    lines.append("")
    for scheme, table in summary.items():
        lines += [f"**{scheme.upper()}**", "",
                  "| target | median req/s | runs (req/s) | p50 / p99 latency | server CPU per request "
                  "(context switches) | full pipeline ÷ this: req/s (paired); CPU |",
                  "|---|---:|---|---|---:|---:|"]
        for kind in shown:
            if kind in table:
                row = table[kind]
                lines.append(_table_row(throughput.LABELS[kind], row,
                                        _ratio_cell(row.get("pipeline_ratio"), row.get("pipeline_ratio_paired_median"),
                                                    row.get("pipeline_cpu_ratio"))))
        lines += _targets_line(scheme, table)
        lines += _workers_md(scheme, table, skipped)
    return "\n".join(lines)


def startup_md(result: dict) -> str:
    """The start-up section: every variant, the ≤ 1 s target for ``serve`` and the window, the imports."""
    lines = ["From `Popen` to the port accepting connections, and to the first beacon answered over HTTP (a GET "
             "of `/telemetry`), each a fresh process on fixed free ports; medians of the rounds.", "",
             "| process | to accepting connections | to first beacon answered | runs (first beacon, s) |",
             "|---|---:|---:|---|"]
    for name, row in result["variants"].items():
        first = row["median_first_beacon_s"]
        runs = row["first_beacon_s"] or row["accepting_s"]
        lines.append(f"| {name} | {row['median_accepting_s']:.2f} s | {'' if first is None else f'{first:.2f} s'} | "
                     f"{', '.join(f'{x:.2f}' for x in runs)} |")
    lines += [f"| {name} | | | not measured: {reason} |" for name, reason in result.get("skipped", {}).items()]
    checks = [f"{name.split(' (')[0]}: {row['median_first_beacon_s']:.2f} s "
              f"{_verdict(row['median_first_beacon_s'] <= TARGETS['startup_s'])}"
              for name, row in result["variants"].items() if name in startup.TARGETED]
    lines += ["", "Target: the first beacon answered ≤ 1 s after process start, for `serve` and the window: "
                  + "; ".join(checks) + ".", ""]
    imports = result["imports"]
    parts = [f"{what} ({', '.join(f'`{m}`' for m in startup.IMPORTED[what])}): "
             + ", ".join(f"{name} {ms:.0f} ms" for name, ms in rows) for what, rows in imports.items()]
    former = ("cheroot (the former stack) is imported by neither" if not result["cheroot_imported"]
              else "**cheroot is still imported**")
    lines.append("Heaviest imports (top-level packages, median cumulative ms of 5 `python3 -X importtime` runs): "
                 + "; ".join(parts) + f". {former}.")
    return "\n".join(lines)


def scale_md(result: dict) -> str:
    """The journal at scale: each step warm and cold, memory, and the window over it."""
    cold = result["cold"]
    steps = [
        ("open: `BeaconStore(path)`", "open_s"),
        ("list: `store.summaries()`, all rows", "summaries_s"),
        ("filter rows in Python: kind and status", "filter_kind_status_s"),
        ("filter rows in Python: free text in any column", "filter_text_s"),
        ("count rows by version in Python", "filter_count_by_version_s"),
        (f"`store.query(status='invalid')`: {result['invalid_records']:,} full records", "query_invalid_s"),
        ("`store.counts()`", "counts_s"),
    ]
    lines = [f"{result['records']:,} records ({result['file_mb']:.0f} MB file), medians of "
             f"{len(result['rounds'])} fresh processes each; cold = the database's pages dropped from the OS "
             "page cache first.", "",
             "| step | warm | cold |", "|---|---:|---:|"]
    lines += [f"| {label} | {result[key] * 1000:,.0f} ms | {cold[key] * 1000:,.0f} ms |" for label, key in steps]
    warm_open = result["open_s"] + result["summaries_s"]
    cold_open = cold["open_s"] + cold["summaries_s"]
    lines += [f"| **open + list** | **{warm_open * 1000:,.0f} ms** | **{cold_open * 1000:,.0f} ms** |",
              f"| memory: peak RSS of the process | {result['rss_mb']:.0f} MB | {cold['rss_mb']:.0f} MB |",
              f"| memory: RSS after imports, before opening | {result['rss_before_open_mb']:.0f} MB | "
              f"{cold['rss_before_open_mb']:.0f} MB |", "",
              f"Targets: open + list ≤ 1 s: {warm_open:.2f} s warm {_verdict(warm_open <= TARGETS['open_s'])}, "
              f"{cold_open:.2f} s cold {_verdict(cold_open <= TARGETS['open_s'])}; ≤ 300 MB: "
              f"{max(result['rss_mb'], cold['rss_mb']):.0f} MB "
              f"{_verdict(max(result['rss_mb'], cold['rss_mb']) <= TARGETS['rss_mb'])}."]
    if "window" in result:
        lines += ["", window_md(result["window"])]
    return "\n".join(lines)


def window_md(w: dict) -> str:
    """The window over the scale database: every step holds the GUI thread for its time."""
    ms = lambda s: f"{s * 1000:,.0f} ms"  # noqa: E731
    rows = w["filter_rows"]
    lines = [f"**The window over the same {w['rows']:,} records** (real `MainWindow`, Qt offscreen, medians of "
             f"{len(w['runs'])} fresh processes; each step runs on the GUI thread, so its time is how long the "
             "window cannot answer):", "",
             "| step | time |", "|---|---:|",
             f"| process start → window painted (the first {w['first_rows']:,} rows) | {w['shown_s']:.2f} s |",
             f"| process start → every record in the table (read in steps between events) | "
             f"{w['loaded_s']:.2f} s |",
             f"| process start → the filter's search text made too (in steps, after the rows) | "
             f"{w['search_ready_s']:.2f} s |",
             f"| longest step while reading (the window waits for it) | {ms(w['load_step_max_s'])} |",
             f"| peak memory (RSS) | {w['rss_mb']:.0f} MB |",
             f"| scroll: jump anywhere and repaint, p50 / max of {40 * len(w['runs'])} | "
             f"{ms(w['scroll_p50_s'])} / {ms(w['scroll_max_s'])} |"]
    lines += [f"| filter “{text}” ({rows[text]:,} rows) | {ms(t)} |" for text, t in w["filter_s"].items()]
    lines += [f"| clear the filter | {ms(w['clear_s'])} |"]
    lines += [f"| sort by the {name} column | {ms(t)} |" for name, t in w["sort_s"].items()]
    lines += [f"| redaction on | {ms(w['redact_s'])} |",
              f"| redaction on: filter “chrome” | {ms(w['redacted_filter_s'])} |"]
    lines += [f"| redaction on: sort by the {name} column | {ms(t)} |"
              for name, t in w["redacted_sort_s"].items()]
    slowest = max([*w["filter_s"].values(), w["clear_s"], *w["sort_s"].values(), w["redact_s"],
                   w["redacted_filter_s"], *w["redacted_sort_s"].values()])
    lines += ["", f"Targets for the window: open ≤ 1 s: painted after {w['shown_s']:.2f} s "
                  f"{_verdict(w['shown_s'] <= TARGETS['open_s'])}, every record in after {w['loaded_s']:.2f} s "
                  f"{_verdict(w['loaded_s'] <= TARGETS['open_s'])}; "
                  f"≤ 300 MB: {w['rss_mb']:.0f} MB {_verdict(w['rss_mb'] <= TARGETS['rss_mb'])}; "
                  f"slowest filter or sort: {ms(slowest)}."]
    return "\n".join(lines)


def gui_md(result: dict) -> str:
    """The window under load: send → row painted, and how long its event loop was blocked, phase by phase."""
    lines = ["| phase | beacons sent (rate achieved) | send → row painted p50 / p95 / max | "
             "event loop: longest block, blocks > 100 ms |", "|---|---|---|---|"]
    for name, row in result["phases"].items():
        lines.append(f"| {name} | {row['sent']:,} ({row['achieved_rate']:,.0f}/s) | {row['p50_ms']:.0f} / "
                     f"{row['p95_ms']:.0f} / {row['max_ms']:.0f} ms | {row['max_block_ms']:.0f} ms, "
                     f"{row['blocks_over_100ms']} |")
    idle, mid, high = (result["phases"][k] for k in ("idle", "500/s", "1000/s"))
    lines += ["", f"Window start-up to first paint (offscreen; median of {len(result['startup_runs'])}): "
                  f"{result['startup_s']:.2f} s (its first beacon answered: see Start-up).", "",
              f"Targets: p95 ≤ 100 ms idle: {idle['p95_ms']:.0f} ms "
              f"{_verdict(idle['p95_ms'] <= TARGETS['idle_p95_ms'])}; "
              f"p95 ≤ 250 ms at 500/s: {mid['p95_ms']:.0f} ms {_verdict(mid['p95_ms'] <= TARGETS['load_p95_ms'])}; "
              f"event loop never blocked > 100 ms at 1,000/s: longest {high['max_block_ms']:.0f} ms "
              f"{_verdict(high['max_block_ms'] <= TARGETS['block_ms'])}."]
    return "\n".join(lines)
