"""RESULTS.md from the driver's records: tables with the spread, ratios, targets, notes.

Used by bench/compare.py (corral's virtualenv); nothing here measures anything.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Iterable
from typing import Any

# (workload, metric, column title, format, higher is better)
COLUMNS = (
    ("enqueue", "per_s", "per-call enqueue /s", "{:,.0f}", True),
    ("bulk", "per_s", "bulk enqueue /s", "{:,.0f}", True),
    ("processing", "per_s", "processing /s", "{:,.0f}", True),
    ("round_trip", "p50_ms", "round trip p50 ms", "{:.2f}", False),
    ("round_trip", "p99_ms", "round trip p99 ms", "{:.2f}", False),
    ("round_trip", "warmup_max_ms", "slowest of 20 warm-up calls ms", "{:.1f}", False),
    ("memory", "mb_per_10k", "client MB / 10k sends", "{:.2f}", False),
)
ID_RUN = re.compile(r"[0-9a-f]{8}[0-9a-f-]*|\d+")
Summary = dict[str, dict[tuple[str, str], list[float]]]


# -- collected by the driver ---------------------------------------------------------------
def machine() -> dict[str, Any]:
    """Date, cores, CPU model, kernel, python and load: what the figures depend on."""
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "python": platform.python_version(), "load_before": os.getloadavg()}  # fmt: skip


def redis_version(client: Any) -> str:
    return str(client.info("server")["redis_version"])


def key_patterns(client: Any) -> list[dict[str, Any]]:
    """The database's keys grouped by name with ids replaced by ``*``: count, count without TTL."""
    groups: dict[str, list[int]] = {}
    for key in client.scan_iter(count=1000):
        pattern = ID_RUN.sub("*", key.decode(errors="replace"))
        counts = groups.setdefault(pattern, [0, 0])
        counts[0] += 1
        if counts[0] <= 50 and client.ttl(key) == -1:  # a sample is enough to tell
            counts[1] += 1
    return [{"pattern": p, "count": c[0], "no_ttl_of_first_50": c[1]}
            for p, c in sorted(groups.items())]  # fmt: skip


def progress_line(label: str, record: dict[str, Any]) -> str:
    head = f"[{record['workload']} {record['rep']}] {label}:"
    if "figures" in record:
        figures = ", ".join(f"{k}={v:,.3g}" for k, v in record["figures"].items())
        return f"{head} {figures}"
    return f"{head} {record.get('skipped') or record.get('error')}"


# -- summary -------------------------------------------------------------------------------
def summarize(runs: Iterable[dict[str, Any]]) -> Summary:
    """Per system, per (workload, metric): the values of every repetition."""
    summary: Summary = {}
    for run in runs:
        for metric, value in run.get("figures", {}).items():
            key = (run["workload"], metric)
            summary.setdefault(run["system"], {}).setdefault(key, []).append(value)
    return summary


def median(summary: Summary, system: str | None, workload: str, metric: str) -> float | None:
    values = summary.get(system or "", {}).get((workload, metric))
    return statistics.median(values) if values else None


def best_peer(results: dict[str, Any], summary: Summary, column: tuple[Any, ...]) -> str | None:
    """The Redis peer with the best median on ``column``."""
    workload, metric, _title, _fmt, higher = column
    peers = [s["key"] for s in results["systems"] if s["kind"] == "peer" and s["store"] == "Redis"]
    scored = [(v, p) for p in peers if (v := median(summary, p, workload, metric)) is not None]
    if not scored:
        return None
    return (max(scored) if higher else min(scored))[1]


def cell(values: list[float] | None, fmt: str) -> str:
    if not values:
        return "n/a"
    text = fmt.format(statistics.median(values))
    if len(values) > 1:
        text += f" ({fmt.format(min(values))}-{fmt.format(max(values))})"
    return text


def ratio(ours: float | None, theirs: float | None, higher: bool) -> str:
    """How many times better ``ours`` is (> 1 is better, whichever way the metric goes)."""
    if not ours or not theirs:
        return "n/a"
    return f"{(ours / theirs if higher else theirs / ours):.2f}x"


# -- markdown ------------------------------------------------------------------------------
def markdown(results: dict[str, Any]) -> str:
    """The whole RESULTS.md."""
    summary = summarize(results["runs"])
    parts = [header(results), figures_table(results, summary, "Redis"),
             ratios_table(results, summary), figures_table(results, summary, "SQLite"),
             protections(summary), floor_table(results), targets(results, summary),
             key_table(results), notes(results), problems(results)]  # fmt: skip
    return "\n\n".join(part for part in parts if part) + "\n"


def header(results: dict[str, Any]) -> str:
    m, a = results["machine"], results["args"]
    return "\n".join([
        "# corral side-by-side benchmark",
        "",
        f"Measured {m['date']} on {m['nproc']} cores ({m['cpu']}), Linux {m['kernel']}, "
        f"Python {m['python']}, redis-server {m.get('redis_server', '?')} (private, local, "
        f"no persistence); load average before {fmt_load(m['load_before'])}, after "
        f"{fmt_load(results['load_after'])}. The run took {results['duration_s'] / 60:.0f} min.",
        "",
        "Method (bench/README.md has the details):",
        "",
        f"- enqueue: {a['tasks']:,} sends from one client process; bulk: the same through the "
        "system's many-at-once API in batches of 1,000;",
        f"- processing: {a['tasks']:,} tasks queued, then the worker started with 2 processes; "
        "timed from the first task done (start-up excluded) until all are done, or for at "
        f"most {a['budget_s']:g} s (a slower system's rate is then measured on what it did, "
        "marked *);",
        f"- round trip: {a['round_trips']} sequential send-then-wait, after 20 untimed "
        "warm-up calls (the slowest of which is shown);",
        f"- memory: the client's RSS growth over {a['memory_sends']:,} sends after 5,000 "
        "untimed, results never read, per 10,000;",
        f"- every figure but memory and the floor is the median of {a['repeats']} runs "
        f"({max(a['repeats'], a.get('protection_repeats', 0))} for corral's processing, "
        "with and without its protections), (min-max) after it; runs are interleaved across "
        "systems. Figures are noisy: compare only within one run.",
    ])  # fmt: skip


def fmt_load(load: list[float]) -> str:
    return " / ".join(f"{value:.1f}" for value in load)


def systems_of(results: dict[str, Any], store: str) -> list[dict[str, Any]]:
    return [s for s in results["systems"] if s["store"] == store]


def figures_table(results: dict[str, Any], summary: Summary, store: str) -> str:
    systems = systems_of(results, store)
    if not systems:
        return ""
    lines = [f"## {store}", "", "| system | " + " | ".join(c[2] for c in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 1) + "|"]  # fmt: skip
    partial = partial_systems(results)
    for system in systems:
        cells = []
        for workload, metric, _title, fmt, _higher in COLUMNS:
            text = cell(summary.get(system["key"], {}).get((workload, metric)), fmt)
            star = workload == "processing" and system["key"] in partial and text != "n/a"
            cells.append(text + (" *" if star else ""))
        lines.append(f"| {system['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def partial_systems(results: dict[str, Any]) -> set[str]:
    """Systems with a processing run cut at the time budget."""
    return {
        run["system"]
        for run in results["runs"]
        if run["workload"] == "processing" and not run.get("figures", {}).get("all_done", 1)
    }


def ratios_table(results: dict[str, Any], summary: Summary) -> str:
    shown = [c for c in COLUMNS if c[0] != "memory" and c[1] != "warmup_max_ms"]
    floor = next((s["key"] for s in results["systems"] if s["kind"] == "floor"), None)
    lines = ["## Ratios (Redis)", "",
             "Times better than the fastest peer on that figure (named) and than the raw "
             "floor (> 1 is better; for latencies the inverse ratio).", "",
             "| system | " + " | ".join(f"{c[2]}: vs peer · vs floor" for c in shown) + " |",
             "|---" * (len(shown) + 1) + "|"]  # fmt: skip
    best = {c: best_peer(results, summary, c) for c in shown}
    lines.append("| fastest peer | " + " | ".join(str(best[c]) for c in shown) + " |")
    for system in systems_of(results, "Redis"):
        cells = []
        for column in shown:
            workload, metric, _t, _f, higher = column
            ours = median(summary, system["key"], workload, metric)
            peer = median(summary, best[column], workload, metric)
            raw = median(summary, floor, workload, metric)
            cells.append(f"{ratio(ours, peer, higher)} · {ratio(ours, raw, higher)}")
        lines.append(f"| {system['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


PROTECTION_RUNS = (("off", "corral-off"), ("cgroup", "corral"), ("subreaper", "corral-subreaper"))
"""(containment, system key) of the runs that measure what the protections cost."""


def protection_cost(on: float | None, off: float | None) -> float | None:
    """The share of throughput the protections cost: ``(off - on) / off`` (< 0: noise)."""
    if not on or not off:
        return None
    return (off - on) / off


def protections(summary: Summary) -> str:
    """The cost of the protections: each containment mode against the run without them."""
    off = median(summary, "corral-off", "processing", "per_s")
    if not off:
        return ""
    lines = ["## Protections", "",
             "\"Off\" is the same worker with its process protections taken out by "
             "bench/peers/corral_unprotected.py (bench only: corral has no switch for it): pool "
             "processes are plain children (no cgroup, no subreaper, no process group, no "
             "markers, no /proc scans), no leftover checks, no fork guard, no orphan reaping, "
             "no lease renewal. Leases themselves stay: tasks are reserved with a lease and "
             "settled with its token in both runs, because that is the broker's delivery model "
             "(at-least-once), not a protection that can be removed. Cost = (off - on) / off "
             "on the medians of the processing runs (more of them than for the other systems: "
             "--protection-repeats).", "",
             "Worker CPU is the user + system time of the worker's processes per task over the "
             "same timed window (less noisy than the rate on a shared machine).", "",
             "| containment | processing /s | cost | worker CPU µs / task | round trip p50 ms "
             "| round trip p99 ms |", "|---|---|---|---|---|---|"]  # fmt: skip
    for mode, key in PROTECTION_RUNS:
        figures = summary.get(key, {})
        rate = median(summary, key, "processing", "per_s")
        cost = "baseline" if key == "corral-off" else optional(protection_cost(rate, off), "{:.1%}")
        cells = [cell(figures.get(("processing", "per_s")), "{:,.0f}"), cost,
                 cell(figures.get(("processing", "cpu_us_per_task")), "{:.0f}"),
                 cell(figures.get(("round_trip", "p50_ms")), "{:.2f}"),
                 cell(figures.get(("round_trip", "p99_ms")), "{:.2f}")]  # fmt: skip
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def optional(value: float | None, fmt: str) -> str:
    """``value`` formatted, or n/a."""
    return "n/a" if value is None else fmt.format(value)


def floor_table(results: dict[str, Any]) -> str:
    runs = [r for r in results["runs"] if r["workload"] == "floor" and "figures" in r]
    if not runs:
        return ""
    lines = ["## Floor: `redis-benchmark` on the same server (LPUSH, 100,000 requests)", "",
             "| clients | requests/s |", "|---|---|"]  # fmt: skip
    for name, value in runs[0]["figures"].items():
        label = name.removeprefix("lpush_").removesuffix("_per_s").replace("_", " ")
        lines.append(f"| {label} | {value:,.0f} |")
    return "\n".join(lines)


def targets(results: dict[str, Any], summary: Summary) -> str:
    from targets import evaluate

    lines = ["## Targets (issue 7)", "", "| target | measured | |", "|---|---|---|"]
    for target, measured, met in evaluate(results, summary):
        verdict = "n/a" if met is None else ("met" if met else "**not met**")
        lines.append(f"| {target} | {measured} | {verdict} |")
    return "\n".join(lines)


def key_table(results: dict[str, Any]) -> str:
    keys = results.get("keys") or {}
    if not keys:
        return ""
    lines = ["## Redis keys left after the round trips", "",
             "Key names with ids replaced by `*`; *no TTL* counts, among the first 50 keys of "
             "a pattern, those that never expire.", "",
             "| system | pattern | keys | no TTL |", "|---|---|---|---|"]  # fmt: skip
    for system, patterns in keys.items():
        for p in patterns:
            lines.append(f"| {system} | `{p['pattern']}` | {p['count']:,} | "
                         f"{p['no_ttl_of_first_50']} |")  # fmt: skip
    return "\n".join(lines)


def notes(results: dict[str, Any]) -> str:
    versions: dict[str, dict[str, str]] = {}
    for run in results["runs"]:
        if run.get("versions"):
            versions.setdefault(run["system"], run["versions"])
    lines = ["## Systems and their configuration", "",
             "Each peer runs in its own virtualenv (bench/peers/requirements/*.txt); anything "
             "not at the peer's default is said here and in its bench/peers module.", "",
             "| system | versions | configuration |", "|---|---|---|"]  # fmt: skip
    for system in results["systems"]:
        pinned = ", ".join(f"{k} {v}" for k, v in versions.get(system["key"], {}).items())
        lines.append(f"| {system['label']} | {pinned or '?'} | {system['notes']} |")
    return "\n".join(lines)


def problems(results: dict[str, Any]) -> str:
    lines = [f"- {r['system']} {r['workload']} (run {r['rep']}): "
             f"{r.get('skipped') or r.get('error')}"
             for r in results["runs"] if "figures" not in r]  # fmt: skip
    if results.get("leftover_pids"):
        lines.append(f"- processes outlived the run and were killed: {results['leftover_pids']}")
    if not lines:
        return ""
    return "\n".join(["## Not measured", "", *lines])
