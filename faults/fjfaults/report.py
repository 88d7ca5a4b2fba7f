"""Availability gaps and the summary table."""
import bisect


def percentile(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(-(-q * len(xs) // 1)) - 1))   # nearest rank
    return xs[k]


def fault_records(entries):
    starts, stops = {}, {}
    for e in entries:
        if e["process"] == "nemesis" and e["f"] in ("start", "stop"):
            (starts if e["f"] == "start" else stops)[e["value"]["id"]] = e
    out = []
    for fid in sorted(starts):
        s = starts[fid]
        kind = s["value"]["kind"]
        target = s["value"].get("plan", {}).get("target")
        if kind in ("kill", "pause") and target:
            # The targets of #9 are about killing/pausing a partition leader: one row per target.
            kind = f"{kind} ({target})"
        out.append({"id": fid, "kind": kind, "start": s["time"],
                    "stop": stops[fid]["time"] if fid in stops else None, "value": s["value"]})
    return out


def availability_gaps(entries, faults, end_time):
    """Per fault: the longest time, from the fault's start to the next fault's start, during
    which some queue partition had no successful acks=all write (the worst partition)."""
    acks = {}
    for e in entries:
        if e["f"] == "send" and e["type"] == "ok":
            acks.setdefault(e["value"]["p"], []).append(e["time"])
    for ts in acks.values():
        ts.sort()
    out = []
    for i, f in enumerate(faults):
        t0 = f["start"]
        t1 = faults[i + 1]["start"] if i + 1 < len(faults) else end_time
        worst, worst_p, censored = 0.0, None, False
        for p, ts in acks.items():
            j = bisect.bisect_right(ts, t0)
            prev, g = t0, 0.0
            while j < len(ts) and ts[j] <= t1:
                g = max(g, ts[j] - prev)
                prev = ts[j]
                j += 1
            nxt = ts[j] if j < len(ts) else None
            tail = (min(nxt, t1) if nxt is not None else t1) - prev
            c = nxt is None or nxt > t1
            if tail > g:
                g = tail
                cen = c and prev == t0
            else:
                cen = False
            if g > worst:
                worst, worst_p, censored = g, p, cen
        out.append({"id": f["id"], "kind": f["kind"], "gap": round(worst, 3), "partition": worst_p,
                    "no_write_in_window": censored})
    return out


def fmt_s(x):
    return "-" if x is None else f"{x:.2f} s"


def summary(results, faults, gaps, session_timeout_s, ops):
    lines = []
    by_kind = {}
    for f in faults:
        by_kind.setdefault(f["kind"], []).append(f)
    gap_kind = {}
    for g in gaps:
        gap_kind.setdefault(g["kind"], []).append(g["gap"])
    lines.append("| fault | injected | gap p50 | gap p99 | gap max | target p99 |")
    lines.append("|---|---:|---:|---:|---:|---|")
    for k in sorted(by_kind):
        gs = gap_kind.get(k, [])
        if k.startswith("kill") or k in ("torn-segment", "torn-metadata"):
            target = "< 2 s"
        elif k.startswith("pause") or k.startswith("partition"):
            target = f"< {session_timeout_s + 1:.0f} s"
        else:
            target = "-"
        p99 = percentile(gs, 0.99)
        if p99 is not None and target != "-":
            limit = float(target.split()[1])
            target += " ✓" if p99 < limit else " ✗"
        lines.append(f"| {k} | {len(by_kind[k])} | {fmt_s(percentile(gs, 0.5))} | {fmt_s(p99)} | "
                     f"{fmt_s(max(gs) if gs else None)} | {target} |")
    lines.append(f"| **total** | {len(faults)} | | | | |")
    lines.append("")
    lines.append("| operation | ok | failed | indeterminate |")
    lines.append("|---|---:|---:|---:|")
    for name, c in ops:
        lines.append(f"| {name} | {c.get('ok', 0)} | {c.get('fail', 0)} | {c.get('info', 0)} |")
    lines.append("")
    lines.append("| checker | result | anomalies |")
    lines.append("|---|---|---|")
    for name, r in results.items():
        an = ", ".join(f"{k}: {v}" for k, v in sorted(r["counts"].items())) or "none"
        if r.get("stats", {}).get("resent_after_epoch_bump"):
            an += f" (client re-sends in a new producer epoch, librdkafka #4953: {r['stats']['resent_after_epoch_bump']})"
        lines.append(f"| {name} | {'valid' if r['valid'] else 'INVALID'} | {an} |")
    return "\n".join(lines)


def op_counts(entries):
    """(name, {ok, fail, info}) per operation kind."""
    counts = {}
    for e in entries:
        if e["type"] in ("ok", "fail", "info") and e["process"] not in ("nemesis", "harness", "monitor") \
                and not e["process"].startswith("reader") and not e["process"].startswith("meta-reader"):
            f = e["f"]
            if f in ("send",):
                name = "queue: send (acks=all)"
            elif f in ("create", "delete", "partitions", "config"):
                name = {"create": "metadata: create topic", "delete": "metadata: delete topic",
                        "partitions": "metadata: add partitions", "config": "metadata: alter config"}[f]
            elif f == "commit":
                name = "groups: commit offsets"
            elif f == "read-committed":
                name = "groups: read committed offsets"
            else:
                continue
            counts.setdefault(name, {}).setdefault(e["type"], 0)
            counts[name][e["type"]] += 1
    return sorted(counts.items())
