"""The health-probe loop of benchmarks/load.py and its verdict: /readyz and /livez asked all through a load run,
as a Kubernetes kubelet would, and the worst latency reported (a probe past PROBE_BOUND_S fails the run)."""
from __future__ import annotations

import asyncio
import time

PROBES = ("/readyz", "/livez")
PROBE_BOUND_S = 1.0  # Kubernetes' default probe timeout is 1 s


async def probe_loop(url: str, t0: float, stop_at: float, every: float, probes: list) -> None:
    """GET /readyz and /livez in turn every `every` s on a connection of their own until stop_at; append
    (seconds since t0, path, latency s, HTTP status or the error's name) to probes."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        i = 0
        while time.monotonic() < stop_at:
            path = PROBES[i % len(PROBES)]
            i += 1
            start = time.monotonic()
            try:
                status: int | str = (await client.get(path)).status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            probes.append((start - t0, path, time.monotonic() - start, status))
            await asyncio.sleep(every)


def probe_lines(probes: list, bound: float = PROBE_BOUND_S) -> tuple[list[str], bool]:
    """Markdown lines (per path: count, not-200 answers, p50, worst latency and when) and whether every probe
    answered 200 within `bound` seconds. No probes: ([], True)."""
    if not probes:
        return [], True
    lines = [f"Health probes (every path asked in turn on its own connection; bound {bound:g} s):", "",
             "| probe | answered | not 200 | p50 ms | worst ms | worst at s |", "| --- | --- | --- | --- | --- | --- |"]
    passed = True
    for path in PROBES:
        rows = [p for p in probes if p[1] == path]
        if not rows:
            continue
        lat = sorted(r[2] for r in rows)
        worst = max(rows, key=lambda r: r[2])
        bad = [r for r in rows if r[3] != 200]
        passed = passed and not bad and worst[2] <= bound
        lines.append(f"| {path} | {len(rows)} | {len(bad)} | {lat[len(lat) // 2] * 1000:.1f} | "
                     f"{worst[2] * 1000:.1f} | {worst[0]:.1f} |")
    worst_all = max(p[2] for p in probes)
    lines += ["", f"Worst probe latency: **{worst_all * 1000:.0f} ms**; every probe 200 within {bound:g} s: "
              f"**{'yes' if passed else 'NO'}**"]
    return lines, passed
