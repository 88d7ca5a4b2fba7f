# Sourced by bench/throughput.sh and bench/profile.sh: one durable single-node Fjord
# (combined broker + controller, data on disk under a temp dir) on free loopback ports.
#
#   bench_setup_tools [0]  librdkafka-dev (apt), the C load generator, Fjord release build (not with 0)
#   bench_node_start       formats and starts the node; sets BENCH_DIR BENCH_BOOTSTRAP BENCH_PID
#   bench_node_stop        SIGTERM (SIGKILL after 20 s), removes BENCH_DIR (installed as EXIT trap)
#   bench_topic NAME P     creates a topic with P partitions, replication factor 1
#
# Expects to run from the repository root. Swift builds always hold /tmp/fjord-build.lock.

BENCH_BUILD=${FJORD_BENCH_BUILD:-/tmp/fjord-bench-build}
LOADGEN=$BENCH_BUILD/fjord-loadgen
FJORD=.build/release/fjord
PY=${FJORD_PYTHON:-.venv/bin/python}

bench_log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bench_setup_tools() {
  local build=${1:-1}
  if [ ! -f /usr/include/librdkafka/rdkafka_mock.h ]; then
    bench_log "installing librdkafka-dev"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    timeout 600 $sudo apt-get install -y librdkafka-dev >/dev/null || {
      timeout 300 $sudo apt-get update >/dev/null && timeout 600 $sudo apt-get install -y librdkafka-dev >/dev/null; }
  fi
  mkdir -p "$BENCH_BUILD"
  bench_log "building $LOADGEN"
  cc -O2 -Wall bench/loadgen.c -lrdkafka -o "$LOADGEN"
  if [ "$build" = 1 ]; then
    bench_log "building fjord (release; waiting for /tmp/fjord-build.lock)"
    timeout 3600 flock /tmp/fjord-build.lock swift build -c release --product fjord >&2
  fi
  [ -x "$PY" ] || { echo "no $PY: run scripts/setup first" >&2; return 1; }
}

bench_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bench_node_start() {
  BENCH_DIR=$(mktemp -d /tmp/fjord-bench-XXXXXX)
  local bp cp
  bp=$(bench_free_port); cp=$(bench_free_port)
  while [ "$cp" = "$bp" ]; do cp=$(bench_free_port); done
  cat >"$BENCH_DIR/server.properties" <<EOF
# bench/fjord-node.sh: a durable single-node combined server (Kafka's defaults otherwise:
# data in log segments on disk, flushed by the OS and at segment roll, as Kafka does).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cp
listeners=PLAINTEXT://127.0.0.1:$bp,CONTROLLER://127.0.0.1:$cp
advertised.listeners=PLAINTEXT://127.0.0.1:$bp
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$BENCH_DIR/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.segment.bytes=1073741824
EOF
  timeout 60 "$FJORD" storage format -t "$("$FJORD" storage random-uuid)" -c "$BENCH_DIR/server.properties" >/dev/null
  "$FJORD" server-start "$BENCH_DIR/server.properties" >"$BENCH_DIR/server.log" 2>&1 &
  BENCH_PID=$!
  BENCH_BOOTSTRAP=127.0.0.1:$bp
  trap bench_node_stop EXIT
  trap 'exit 130' INT TERM
  local i
  for i in $(seq 1 100); do
    if timeout 10 "$FJORD" topics --bootstrap-server "$BENCH_BOOTSTRAP" --list >/dev/null 2>&1; then
      bench_log "fjord pid $BENCH_PID at $BENCH_BOOTSTRAP, data in $BENCH_DIR/data"
      return 0
    fi
    kill -0 "$BENCH_PID" 2>/dev/null || { cat "$BENCH_DIR/server.log" >&2; return 1; }
    sleep 0.2
  done
  echo "fjord did not come up" >&2
  return 1
}

bench_node_stop() {
  if [ -n "${BENCH_PID:-}" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
    kill -TERM "$BENCH_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 100); do kill -0 "$BENCH_PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$BENCH_PID" 2>/dev/null && kill -KILL "$BENCH_PID" 2>/dev/null
    wait "$BENCH_PID" 2>/dev/null || true
  fi
  BENCH_PID=
  if [ -n "${BENCH_DIR:-}" ] && [ -d "$BENCH_DIR" ]; then
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$BENCH_DIR"
  fi
}

bench_topic() {
  timeout 30 "$FJORD" topics --bootstrap-server "$BENCH_BOOTSTRAP" --create --topic "$1" \
    --partitions "$2" --replication-factor 1 >/dev/null
}

bench_topic_delete() {
  timeout 30 "$FJORD" topics --bootstrap-server "$BENCH_BOOTSTRAP" --delete --topic "$1" >/dev/null 2>&1 || true
}
