"""Issue 7's targets, checked against one run's medians: (target, measured, met)."""

from __future__ import annotations

from typing import Any

from report import Summary, best_peer, median, protection_cost

Verdict = tuple[str, str, bool | None]


def evaluate(results: dict[str, Any], summary: Summary) -> list[Verdict]:
    """Every target, in the issue's order; ``None`` where a figure is missing."""
    return [processing(results, summary), processing_floor(summary),
            *enqueue(results, summary), bulk(summary), *round_trip(summary), memory(summary),
            result_keys(results), protections(summary), sqlite(summary)]  # fmt: skip


def verdict(target: str, ours: float | None, theirs: float | None, factor: float,
            text: str) -> Verdict:  # fmt: skip
    if ours is None or theirs is None:
        return target, "n/a", None
    return target, text.format(ours=ours, theirs=theirs, r=ours / theirs), ours >= factor * theirs


def processing(results: dict[str, Any], summary: Summary) -> Verdict:
    peer = best_peer(results, summary, ("processing", "per_s", "", "", True))
    theirs = median(summary, peer, "processing", "per_s")
    return verdict("processing ≥ 2x the fastest peer", median(summary, "corral", "processing",
                   "per_s"), theirs, 2.0, f"{{ours:,.0f}}/s vs {peer} {{theirs:,.0f}}/s "
                   "= {r:.2f}x")  # fmt: skip


def processing_floor(summary: Summary) -> Verdict:
    return verdict("processing beats the naive raw floor (BRPOP + INCR, 2 processes)",
                   median(summary, "corral", "processing", "per_s"),
                   median(summary, "raw", "processing", "per_s"), 1.0 + 1e-9,
                   "{ours:,.0f}/s vs {theirs:,.0f}/s = {r:.2f}x")  # fmt: skip


def enqueue(results: dict[str, Any], summary: Summary) -> list[Verdict]:
    ours = median(summary, "corral", "enqueue", "per_s")
    raw = median(summary, "raw", "enqueue", "per_s")
    peer = best_peer(results, summary, ("enqueue", "per_s", "", "", True))
    theirs = median(summary, peer, "enqueue", "per_s")
    return [
        verdict("per-call enqueue ≥ 90% of raw LPUSH per call", ours, raw, 0.9,
                "{ours:,.0f}/s vs {theirs:,.0f}/s = {r:.0%}"),
        verdict("per-call enqueue ≥ the fastest peer", ours, theirs, 1.0,
                f"{{ours:,.0f}}/s vs {peer} {{theirs:,.0f}}/s = {{r:.2f}}x"),
    ]  # fmt: skip


def bulk(summary: Summary) -> Verdict:
    return verdict("bulk enqueue ≥ 80% of raw pipelined LPUSH",
                   median(summary, "corral", "bulk", "per_s"),
                   median(summary, "raw", "bulk", "per_s"), 0.8,
                   "{ours:,.0f}/s vs {theirs:,.0f}/s = {r:.0%}")  # fmt: skip


def round_trip(summary: Summary) -> list[Verdict]:
    found: list[Verdict] = []
    for metric, limit_ms in (("p50_ms", 1.0), ("p99_ms", 3.0)):
        value = median(summary, "corral", "round_trip", metric)
        target = f"round trip {metric[:3]} ≤ {limit_ms:g} ms"
        found.append((target, "n/a", None) if value is None else
                     (target, f"{value:.2f} ms", value <= limit_ms))  # fmt: skip
    return found


def memory(summary: Summary) -> Verdict:
    value = median(summary, "corral", "memory", "mb_per_10k")
    target = "client memory ≤ 0.1 MB per 10,000 sends"
    return (target, "n/a", None) if value is None else (target, f"{value:.2f} MB", value <= 0.1)


def result_keys(results: dict[str, Any]) -> Verdict:
    """Results expire: every key pattern holding more than a handful of keys has a TTL."""
    target = "no unbounded growth of Redis keys (results expire)"
    patterns = (results.get("keys") or {}).get("corral")
    if patterns is None:
        return target, "n/a", None
    lasting = [p["pattern"] for p in patterns if p["count"] > 10 and p["no_ttl_of_first_50"]]
    measured = "per-task keys without TTL: " + (", ".join(lasting) or "none")
    return target, measured, not lasting


def protections(summary: Summary) -> Verdict:
    """Met on the cgroup run (the default where cgroups can be created); subreaper shown."""
    off = median(summary, "corral-off", "processing", "per_s")
    cgroup = median(summary, "corral", "processing", "per_s")
    subreaper = median(summary, "corral-subreaper", "processing", "per_s")
    target = "protections cost ≤ 10% throughput (cost = (off - on) / off, cgroup run)"
    cost = protection_cost(cgroup, off)
    if cost is None or cgroup is None or off is None:
        return target, "n/a", None
    measured = f"cgroup {cgroup:,.0f}/s vs off {off:,.0f}/s: cost {cost:.1%}"
    subreaper_cost = protection_cost(subreaper, off)
    if subreaper is not None and subreaper_cost is not None:
        measured += f"; subreaper {subreaper:,.0f}/s: cost {subreaper_cost:.1%}"
    return target, measured, cost <= 0.10


def sqlite(summary: Summary) -> Verdict:
    return verdict("SQLite processing beats SqliteHuey",
                   median(summary, "corral-sqlite", "processing", "per_s"),
                   median(summary, "huey-sqlite", "processing", "per_s"), 1.0 + 1e-9,
                   "{ours:,.0f}/s vs {theirs:,.0f}/s = {r:.2f}x")  # fmt: skip
