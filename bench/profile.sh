#!/usr/bin/env bash
# Where a Fjord node spends its time under bench/throughput.sh's heaviest loads: `perf record`
# (cpu-clock sampling with frame-pointer call graphs; this VM has no hardware counters) of one
# durable single-node Fjord while bench/loadgen.c produces 1 KiB records with acks=1, and again
# while it consumes them.
#
#   bench/profile.sh [--records N] [--out DIR] [--no-build]
#
# Writes DIR/{produce,consume}.perf.data and .txt reports (self time and, for Fjord's own
# modules, time including callees; Swift names demangled). Needs `perf` (apt: linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
records=2000000 out=/tmp/fjord-bench-profile build=1
while [ $# -gt 0 ]; do
  case $1 in
    --records) records=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "no perf: apt-get install linux-perf" >&2; exit 1; }
. bench/fjord-node.sh
bench_setup_tools "$build"   # --no-build skips only the Swift build
mkdir -p "$out"
bench_node_start
bench_topic prof 1

demangle() { if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else swift demangle --simplified; fi; }

report() {  # name
  local d=$out/$1.perf.data
  (
    set +o pipefail  # head closes the pipes early
    echo "== $1: self time, by symbol (top 40) =="
    perf report -i "$d" --stdio --no-children --sort symbol -g none --percent-limit 0.3 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | head -40
    echo
    echo "== $1: self time, by shared object =="
    perf report -i "$d" --stdio --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12
    echo
    echo "== $1: time including callees, Fjord's own functions (top 60) =="
    perf report -i "$d" --stdio --children --sort symbol -g none --percent-limit 1 2>/dev/null \
      | grep -v '^#' | grep -E 'Fjord[A-Z]' | head -60
  ) | demangle | sed 's/ *$//' | cut -c1-220 >"$out/$1.txt"
  bench_log "wrote $out/$1.txt"
}

profile() {  # name, then the load-generator command; samples Fjord for as long as the load runs
  local name=$1; shift
  perf record -e cpu-clock -F 999 -g -p "$BENCH_PID" -o "$out/$name.perf.data" >"$out/$name.perf.log" 2>&1 &
  local perf_pid=$!
  sleep 0.5
  "$@" >"$out/$name.load.txt" 2>&1 || bench_log "$name load failed: $(tail -2 "$out/$name.load.txt")"
  kill -INT "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" 2>/dev/null || true
  grep -v '^{' "$out/$name.load.txt" >&2 || true
  report "$name"
}

profile produce timeout 300 "$LOADGEN" produce --bootstrap "$BENCH_BOOTSTRAP" --topic prof --records "$records" --size 1024 --acks 1
profile consume timeout 300 "$LOADGEN" consume --bootstrap "$BENCH_BOOTSTRAP" --topic prof --records "$records" --size 1024
