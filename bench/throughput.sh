#!/usr/bin/env bash
# Issue #6's throughput benchmark: the same load from a C load generator on librdkafka
# (bench/loadgen.c, Debian's librdkafka-dev) and from confluent-kafka (bench/loadgen.py, the
# librdkafka bundled in .venv), against one durable single-node Fjord and against librdkafka's
# in-process mock cluster (test.mock.num.brokers=1), back to back per row so the ratio is fair.
#
#   bench/throughput.sh [--rounds R] [--partitions "1 3"] [--clients "c python"]
#                       [--multi-clients "c"] [--scale F] [--budget SECONDS] [--out FILE.jsonl] [--no-build]
#                       [--sustained-gb G]
#
# The raw JSON lines go to --out (default /tmp/fjord-bench-results-DATE.jsonl); reprint the table
# with `.venv/bin/python bench/report.py FILE.jsonl`.
#
# Matrix: {1 KiB, 100 B} x {acks=1, acks=all} x {produce, consume} x clients x partitions, each
# cell Fjord and mock; R rounds (default 2) with one partition (alternating which target goes
# first), 1 round with more partitions and only the --multi-clients (default: the C one).
# Producer: linger.ms=5, batch.size=262144 (as bench/perf-tools.sh), no compression, no
# idempotence, at most 32 MiB of records unacknowledged. Consumer: a plain assign from the
# beginning of what the row's produce wrote. Record counts aim at a few seconds a run (--scale
# multiplies them); runs that would start more than --budget seconds (default 480) after the
# node came up are skipped and reported as such. Each row's topic is deleted after its consume
# runs, so no row pays for writing back an earlier row's data. Then one sustained produce of G GiB
# (default 6, 0 skips it; more than the kernel keeps dirty, so write-back runs meanwhile) against
# `dd` writing as many bytes to the same file system. Prints the table of bench/report.py, the
# issue's targets and the sustained line.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=2 partitions="1 3" clients="c python" multi_clients="c" scale=1 budget=480 out="" build=1 sustained_gb=6
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --multi-clients) multi_clients=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --sustained-gb) sustained_gb=$2; shift 2
      [[ "$sustained_gb" =~ ^[0-9]+$ ]] || { echo "--sustained-gb takes whole GiB (0 skips the sustained run)" >&2; exit 2; } ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
. bench/fjord-node.sh
t0=$SECONDS
bench_setup_tools "$build"   # --no-build skips only the Swift build, not librdkafka-dev or the load generator
bench_node_start
[ -n "$out" ] || out=/tmp/fjord-bench-results-$(date +%Y%m%d-%H%M%S).jsonl
: >"$out"
budget_start=$SECONDS

# records per run: client size -> count (a few seconds each on this 2-core machine)
records() {
  local n
  case $1-$2 in
    c-1024) n=1000000 ;; c-100) n=3000000 ;;
    python-1024) n=250000 ;; python-100) n=500000 ;;
  esac
  awk -v n="$n" -v s="$scale" 'BEGIN { printf "%d", n * s }'
}

skipped=0
run() {  # client mode target size acks P round topic records
  local client=$1 mode=$2 target=$3 size=$4 acks=$5 p=$6 round=$7 topic=$8 n=$9
  if [ $((SECONDS - budget_start)) -ge "$budget" ]; then
    skipped=$((skipped + 1)); bench_log "skipped (budget): $client $mode $target ${size}B acks=$acks P=$p"; return 0
  fi
  local where=(--bootstrap "$BENCH_BOOTSTRAP")
  [ "$target" = mock ] && where=(--mock)
  local cmd=("$LOADGEN")
  [ "$client" = python ] && cmd=("$PY" bench/loadgen.py)
  local line
  if line=$(timeout 180 "${cmd[@]}" "$mode" "${where[@]}" --topic "$topic" --records "$n" --size "$size" \
              --acks "$acks" --partitions "$p" --label "r$round" 2>"$BENCH_DIR/last.err"); then :; else
    bench_log "run failed ($?): $client $mode $target ${size}B acks=$acks P=$p"; cat "$BENCH_DIR/last.err" >&2
  fi
  grep '^{' <<<"$line" >>"$out" || true
  grep -v '^{' <<<"$line" | sed 's/^/  /' >&2 || true
}

for p in $partitions; do
  r_max=$rounds cl=$clients
  [ "$p" = 1 ] || { r_max=1; cl=$multi_clients; }
  for r in $(seq 1 "$r_max"); do
    for client in $cl; do
      for size in 1024 100; do
        for acks in 1 all; do
          n=$(records "$client" "$size")
          topic=bench-$client-$size-acks$acks-p$p-r$r
          bench_topic "$topic" "$p"
          order="mock fjord"; [ $((r % 2)) = 0 ] && order="fjord mock"
          for target in $order; do run "$client" produce "$target" "$size" "$acks" "$p" "$r" "$topic" "$n"; done
          for target in $order; do run "$client" consume "$target" "$size" "$acks" "$p" "$r" "$topic" "$n"; done
          # Deleting the row's data drops its dirty pages: later rows are then not taxed by the
          # kernel writing back earlier rows' gigabytes (the mock has no such cost either).
          # The cost of write-back is measured on its own below (sustained).
          bench_topic_delete "$topic"
        done
      done
    done
  done
done

# Sustained produce: more than the kernel lets sit dirty (vm.dirty_background_ratio of RAM), so
# write-back to the disk runs during the run, against dd writing as many bytes through the page
# cache on the same file system in the same run.
sustained=""
if [ "$sustained_gb" != 0 ] && [[ " $clients " == *" c "* ]]; then
  n=$(awk -v g="$sustained_gb" 'BEGIN { printf "%d", g * 1024 * 1024 }')
  bench_topic sustained 1
  sline=$(timeout 600 "$LOADGEN" produce --bootstrap "$BENCH_BOOTSTRAP" --topic sustained --records "$n" --size 1024 \
            --acks 1 --partitions 1 --label sustained 2>"$BENCH_DIR/last.err" | grep '^{' || true)
  bench_topic_delete sustained
  sync   # what Fjord left dirty is on disk before dd's clock starts
  t0_dd=$(date +%s.%N)
  if dd if=/dev/zero of="$BENCH_DIR/dd.bin" bs=1M count=$((sustained_gb * 1024)) status=none; then
    t_dd=$(awk -v a="$t0_dd" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  else
    t_dd=""; bench_log "dd failed: no baseline for the sustained run"
  fi
  rm -f "$BENCH_DIR/dd.bin"
  if [ -n "$sline" ] && [ -n "$t_dd" ]; then
    echo "$sline" >"${out%.jsonl}-sustained.json"   # not in $out: the table's rows are the matrix
    sustained=$(SLINE="$sline" T_DD="$t_dd" GB="$sustained_gb" "$PY" -c '
import json, os
d = json.loads(os.environ["SLINE"]); gb = os.environ["GB"]
dd = float(gb) * 1024 ** 3 / 1e6 / float(os.environ["T_DD"])
f, p50, p99, err = d["mb_per_s"], d["p50_ms"], d["p99_ms"], d.get("errors", 0)
print(f"sustained produce, c 1 KiB acks=1, {gb} GiB (write-back running): Fjord {f:.1f} MB/s, p50 {p50:.1f} ms, "
      f"p99 {p99:.1f} ms, {err} errors; dd bs=1M of the same bytes: {dd:.1f} MB/s; Fjord/dd {f / dd:.2f}")') || sustained=""
  fi
fi

echo
echo "bench/throughput.sh $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "librdkafka (C): $(dpkg-query -W -f '${Version}' librdkafka-dev 2>/dev/null); confluent-kafka: $("$PY" -c 'import confluent_kafka as c; print(c.version(), "with librdkafka", c.libversion()[0])')"
echo "fjord $(git rev-parse --short HEAD 2>/dev/null) at $BENCH_BOOTSTRAP (durable: segments on disk in $BENCH_DIR/data)"
[ $skipped = 0 ] || echo "$skipped run(s) skipped: over the ${budget}s budget"
echo
"$PY" bench/report.py "$out"
[ -z "$sustained" ] || { echo; echo "$sustained"; }
echo
echo "raw results (one JSON line per run): $out; $(( SECONDS - t0 )) s in all"
