"""The markdown report of benchmarks/load.py (latency percentiles, worker memory, kill recovery, PASS/FAIL) and
the Stats it reads: kept apart so the load driver stays about sending requests and checking answers."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from benchmarks.probes import probe_lines
from benchmarks.report import machine, machine_line

# Memory is "flat" when no worker's RSS in the second half of the run exceeds its first-half peak by more.
RSS_BOUND_MB = 50.0
MACHINE_PACKAGES = ("bentoml", "onnxruntime-gpu", "httpx")


@dataclass
class Stats:
    """Outcomes of one run. latencies: endpoint -> seconds of each successful request."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # "endpoint: reason" -> count
    wrong: list[str] = field(default_factory=list)  # answers that came back 200 but wrong
    error_times: list[float] = field(default_factory=list)  # seconds since start of each error
    ok_times: list[float] = field(default_factory=list)

    @property
    def n_ok(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())


def percentiles(values: list[float]) -> tuple[float, float, float]:
    a = np.asarray(values) * 1000
    return tuple(float(np.percentile(a, q)) for q in (50, 95, 99)) if len(a) else (float("nan"),) * 3


def rss_table(samples, warmup: float) -> tuple[list[str], float]:
    """Markdown rows per worker pid, and the largest second-half growth over the first-half peak (MB)."""
    by_pid: dict[int, list[tuple[float, float]]] = defaultdict(list)
    roles = {}
    for t, pid, role, mb in samples:
        by_pid[pid].append((t, mb))
        roles[pid] = role
    rows, worst = [], 0.0
    for pid, series in sorted(by_pid.items(), key=lambda kv: roles[kv[0]]):
        ts = np.array([t for t, _ in series])
        mb = np.array([m for _, m in series])
        steady = mb[ts >= warmup] if (ts >= warmup).sum() >= 4 else mb
        half = len(steady) // 2
        growth = float(steady[half:].max() - steady[:half].max()) if half else 0.0
        worst = max(worst, growth)
        rows.append(f"| {roles[pid]} | {pid} | {len(mb)} | {mb[0]:.0f} | {steady.min():.0f} | {steady.max():.0f} | "
                    f"{mb[-1]:.0f} | {growth:+.1f} |")
    return rows, worst


def report(result: dict, args, command: str, mix, tol: float) -> tuple[str, bool]:
    """(markdown, passed): the run's figures, and PASS/FAIL from its errors, wrong answers, memory and recovery."""
    s: Stats = result["stats"]
    ev = result["events"]
    sal = getattr(args, "saliency_clients", 0)
    clients = f"{args.clients + sal} clients ({args.clients} mixed + {sal} on /saliency)" if sal else f"{args.clients} clients"
    lines = [f"## {'Kill test' if args.kill_after is not None else 'Load test'}: {clients}, "
             f"{args.seconds:g} s, mixed endpoints ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"- command: `{command}`", f"- machine: {machine_line(machine(MACHINE_PACKAGES), node=True)}",
             f"- mix (weights): {', '.join(f'{n} {w}' for n, w in mix)}; 1-20 sequences per request "
             "(1 for predict_one and saliency); every answer checked against in-process ONNX Runtime "
             f"(|diff| <= {tol})" + (f"; plus {sal} clients sending only /saliency" if sal else ""), ""]
    total = s.n_ok + s.n_errors + len(s.wrong)
    all_lat = [x for v in s.latencies.values() for x in v]
    p50, p95, p99 = percentiles(all_lat)
    lines += [f"- requests: {total} in {result['seconds']:.1f} s ({total / result['seconds']:.0f}/s); "
              f"ok {s.n_ok}, errors {s.n_errors}, wrong answers {len(s.wrong)}",
              f"- latency of successful requests: p50 {p50:.1f} ms, p95 {p95:.1f} ms, **p99 {p99:.1f} ms**", "",
              "| endpoint | ok | p50 ms | p95 ms | p99 ms |", "| --- | --- | --- | --- | --- |"]
    for name, _ in mix:
        if s.latencies.get(name):
            q = percentiles(s.latencies[name])
            lines.append(f"| {name} | {len(s.latencies[name])} | {q[0]:.1f} | {q[1]:.1f} | {q[2]:.1f} |")
    if s.errors:
        lines += ["", "Errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(s.errors.items()))]
    if s.wrong:
        lines += ["", f"Wrong answers ({len(s.wrong)}): " + "; ".join(s.wrong[:10])]
    passed = not s.wrong
    if result["rss"]:
        rows, worst = rss_table(result["rss"], warmup=min(10.0, args.seconds / 4))
        lines += ["", f"Worker memory (RSS, MB; sampled every {args.sample_every:g} s; growth = peak of the second "
                  f"half minus peak of the first half after a {min(10.0, args.seconds / 4):g} s warm-up; "
                  f"bound {RSS_BOUND_MB:g} MB):", "",
                  "| worker | pid | samples | first | min | max | last | growth |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |", *rows]
        if args.kill_after is None:
            flat = worst <= RSS_BOUND_MB
            lines += ["", f"Memory flat within {RSS_BOUND_MB:g} MB: **{'yes' if flat else 'NO'}** "
                      f"(largest growth {worst:+.1f} MB)"]
            passed = passed and flat
    probe_rows, probes_ok = probe_lines(result.get("probes", []))
    if probe_rows:
        lines += ["", *probe_rows]
        if args.kill_after is None:  # with a kill, probes may fail while the worker restarts: reported only
            passed = passed and probes_ok
    if args.kill_after is not None:
        lines += [""]
        if "killed_at" not in ev:
            lines.append(f"Kill: FAILED ({ev.get('kill_error', 'never happened')})")
            passed = False
        else:
            rec = ev.get("recovered_at")
            lines += [f"- predictor worker pid {ev['killed_pid']} SIGKILLed at {ev['killed_at']:.1f} s; "
                      f"new worker pid {ev.get('new_pid', '-')} seen at "
                      f"{ev.get('respawned_at', float('nan')):.1f} s",
                      f"- errors (requests in flight or sent during the outage): {s.n_errors}; "
                      f"wrong answers: {len(s.wrong)}",
                      f"- answering again (first success after the last error) at "
                      f"{rec if rec is None else f'{rec:.1f}'} s"
                      + ("" if rec is None else f", {rec - ev['killed_at']:.1f} s after the kill")]
            passed = passed and rec is not None and "new_pid" in ev
    else:
        passed = passed and s.n_errors == 0
    lines += ["", f"Result: **{'PASS' if passed else 'FAIL'}**", ""]
    return "\n".join(lines), passed
