"""Prints the table of bench/throughput.sh from its JSON lines (one per load-generator run).

    python3 bench/report.py results.jsonl

Each row is one (client, mode, record size, acks, partitions) cell with Fjord's and the mock's
figures, averaged over the rounds, and Fjord/mock = mean Fjord MB/s / mean mock MB/s; the range
after it is the smallest and largest per-round ratio (each round ran Fjord and the mock back to
back), a measure of the noise. MB = 10^6 bytes of record values. Then the issue's targets.
"""
import collections
import json
import sys

TARGET_PRODUCE_MBS = 520.0  # 2x the Rust in-memory broker's 0.26 GB/s (issue #6), 1 KiB records


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def fmt(x, spec="%.1f"):
    return "-" if x is None else spec % x


def main(path):
    rows = [json.loads(line) for line in open(path) if line.startswith("{")]
    cells = collections.OrderedDict()
    for r in rows:
        key = (r["client"], r["mode"], r["size"], r["acks"], r["partitions"])
        cells.setdefault(key, {"fjord": [], "mock": []})[r["target"]].append(r)

    print("MB/s and records/s: mean over rounds; p50/p99: mean of the rounds' delivery latencies (ms);")
    print("ratio = Fjord/mock MB/s, [min..max] of the per-round ratios; errors = failed/missing records.")
    head = ("client", "mode", "size", "acks", "P", "Fjord MB/s", "rec/s", "p50", "p99",
            "mock MB/s", "rec/s", "p50", "p99", "Fjord/mock", "rounds", "errors")
    lines = []
    summary = {}
    for key, c in cells.items():
        client, mode, size, acks, parts = key
        f, m = c["fjord"], c["mock"]
        fm, mm = mean([x["mb_per_s"] for x in f]), mean([x["mb_per_s"] for x in m])
        per_round = {}
        for x in f + m:
            per_round.setdefault(x["label"], {})[x["target"]] = x["mb_per_s"]
        ratios = [v["fjord"] / v["mock"] for v in per_round.values()
                  if v.get("fjord") and v.get("mock")]
        ratio = fm / mm if fm is not None and mm else None
        rng = "[%.2f..%.2f]" % (min(ratios), max(ratios)) if len(ratios) > 1 else ""
        errors = sum(x["errors"] for x in f + m)
        summary[key] = (fm, mm, ratio)
        lines.append((client, mode, "1 KiB" if size == 1024 else "%d B" % size,
                      acks, str(parts),
                      fmt(fm), fmt(mean([x["records_per_s"] for x in f]), "%.0f"),
                      fmt(mean([x["p50_ms"] for x in f]), "%.1f"),
                      fmt(mean([x["p99_ms"] for x in f]), "%.1f"),
                      fmt(mm), fmt(mean([x["records_per_s"] for x in m]), "%.0f"),
                      fmt(mean([x["p50_ms"] for x in m]), "%.1f"),
                      fmt(mean([x["p99_ms"] for x in m]), "%.1f"),
                      (fmt(ratio, "%.2f") + " " + rng).strip(), str(len(ratios)), str(errors)))
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(head)]
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("-+-".join("-" * w for w in widths))
    for l in lines:
        print(" | ".join(v.ljust(w) for v, w in zip(l, widths)))

    print()
    print("Targets (issue #6):")
    for key, (fm, mm, ratio) in summary.items():
        client, mode, size, acks, parts = key
        if mode != "produce" or size != 1024 or fm is None:
            continue
        tag = "%s 1 KiB acks=%s P=%d" % (client, acks, parts)
        print("  produce >= %.0f MB/s (2x 0.26 GB/s), %-28s %7.1f MB/s  %s"
              % (TARGET_PRODUCE_MBS, tag + ":", fm, "met" if fm >= TARGET_PRODUCE_MBS else "NOT met"))
        if ratio is not None:
            print("  goal produce >= 1.0x mock,     %-28s %7.2fx       %s"
                  % (tag + ":", ratio, "met" if ratio >= 1.0 else "not met"))
    for key, (fm, mm, ratio) in summary.items():
        client, mode, size, acks, parts = key
        if mode != "consume" or fm is None:
            continue
        prod = summary.get((client, "produce", size, acks, parts))
        if not prod or not prod[0]:
            continue
        k = fm / prod[0]
        tag = "%s %s acks=%s P=%d" % (client, "1 KiB" if size == 1024 else "%d B" % size, acks, parts)
        print("  consume >= 2x produce (Fjord), %-28s %7.2fx       %s"
              % (tag + ":", k, "met" if k >= 2 else "NOT met"))
    print("  (the C rows are the measure of the broker: Python's confluent-kafka loop is client-bound)")


if __name__ == "__main__":
    main(sys.argv[1])
