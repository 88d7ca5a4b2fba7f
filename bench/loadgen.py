"""The confluent-kafka twin of bench/loadgen.c, with the same options and output.

    .venv/bin/python bench/loadgen.py produce|consume (--bootstrap H:P | --mock) --topic T
        [--records N] [--size BYTES] [--acks 0|1|all] [--partitions P] [--linger-ms MS]
        [--batch-size BYTES] [--window RECORDS] [--idempotence] [--label TEXT]

produce: N records of BYTES bytes (null key, random capital letters), spread over partitions
0..P-1 record by record, at most --window records sent and not yet acknowledged; latency from
produce() to the delivery report (reports arrive in order per partition, so a FIFO of send
times per partition pairs them). consume: N records from the beginning of partitions 0..P-1
with a plain assign. --mock: librdkafka's in-process mock cluster (test.mock.num.brokers=1);
for consume a producer in this process fills it first (untimed) and the consumer reads from
the broker address the mock advertises; the mock keeps only the last few MB of a partition, so
the consumer seeks back to the partition's first retained offset near its end until it has
read N records. Prints one JSON line and one human line; exit 1 on any failed record.
"""
import argparse
import collections
import json
import random
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def parse():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["produce", "consume"])
    ap.add_argument("--bootstrap")
    ap.add_argument("--mock", action="store_true")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--acks", default="1")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=262144)
    ap.add_argument("--window", type=int, default=0)
    ap.add_argument("--idempotence", action="store_true")
    ap.add_argument("--label", default="")
    o = ap.parse_args()
    if not o.mock and not o.bootstrap:
        ap.error("--bootstrap or --mock")
    if o.window <= 0:  # 32 MiB of records in flight, as the Java producer's buffer.memory
        o.window = max(1000, (32 << 20) // o.size)
    return o


def warm_up(client, topic):
    """Fetches the topic's metadata so the connection is up before timing starts."""
    for _ in range(50):
        md = client.list_topics(topic, timeout=5)
        t = md.topics.get(topic)
        if t is not None and t.error is None and t.partitions:
            return md
        time.sleep(0.1)
    sys.exit("loadgen.py: no metadata for topic %s" % topic)


def produce(o, records):
    conf = {"acks": o.acks, "linger.ms": o.linger_ms, "batch.size": o.batch_size,
            "compression.type": "none", "enable.idempotence": o.idempotence,
            "queue.buffering.max.messages": min(10000000, o.window + 1000),
            "queue.buffering.max.kbytes": 2097151, "message.max.bytes": 10000000,
            "log_level": 4}
    if o.mock:
        conf["test.mock.num.brokers"] = 1
    else:
        conf["bootstrap.servers"] = o.bootstrap
    random.seed(42)
    payload = bytes(random.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(o.size))
    parts = o.partitions
    sent = [collections.deque() for _ in range(parts)]
    latencies = []
    failed = [0, None]
    clock = time.perf_counter_ns
    lat_append = latencies.append

    def on_delivery(err, msg):
        t0 = sent[msg.partition()].popleft()
        if err is not None:
            if failed[0] == 0:
                failed[1] = str(err)
            failed[0] += 1
        else:
            lat_append(clock() - t0)

    p = Producer({**conf, "on_delivery": on_delivery})
    warm_up(p, o.topic)
    window = o.window
    topic = o.topic
    prod = p.produce
    poll = p.poll
    start = clock()
    for i in range(records):
        part = i % parts
        while i - len(latencies) - failed[0] >= window:
            poll(0.001)
        q = sent[part]
        q.append(clock())
        while True:
            try:
                prod(topic, payload, partition=part)
                break
            except BufferError:
                q.pop()
                poll(0.001)
                q.append(clock())
        if i & 1023 == 0:
            poll(0)
    deadline = time.monotonic() + 600
    while len(latencies) + failed[0] < records:
        if time.monotonic() > deadline:
            sys.exit("loadgen.py: gave up waiting for delivery reports")
        poll(0.01)
    seconds = (clock() - start) / 1e9
    return p, seconds, latencies, failed


def percentile(sorted_ms, p):
    if not sorted_ms:
        return 0.0
    rank = min(len(sorted_ms), max(1, int(p / 100.0 * len(sorted_ms) + 0.999999)))
    return sorted_ms[rank - 1]


def report(o, mode, records, nbytes, seconds, latencies_ns, errors):
    target = "mock" if o.mock else "fjord"
    mbs, rps = nbytes / seconds / 1e6, records / seconds
    row = {"client": "python", "librdkafka": confluent_kafka.libversion()[0],
           "confluent_kafka": confluent_kafka.version(), "mode": mode, "target": target,
           "label": o.label, "topic": o.topic, "partitions": o.partitions, "records": records,
           "size": o.size, "acks": o.acks, "seconds": round(seconds, 4),
           "mb_per_s": round(mbs, 2), "records_per_s": round(rps),
           "p50_ms": None, "p99_ms": None, "max_ms": None, "errors": errors}
    if latencies_ns is not None:
        ms = sorted(x / 1e6 for x in latencies_ns)
        row.update(p50_ms=round(percentile(ms, 50), 3), p99_ms=round(percentile(ms, 99), 3),
                   max_ms=round(ms[-1] if ms else 0.0, 3))
        human = ("python %s %s: %d x %d B acks=%s p=%d in %.2f s: %.1f MB/s, %.0f records/s, "
                 "latency p50 %.2f ms p99 %.2f ms max %.2f ms, %d errors"
                 % (mode, target, records, o.size, o.acks, o.partitions, seconds, mbs, rps,
                    row["p50_ms"], row["p99_ms"], row["max_ms"], errors))
    else:
        human = ("python %s %s: %d x %d B p=%d in %.2f s: %.1f MB/s, %.0f records/s, %d errors"
                 % (mode, target, records, o.size, o.partitions, seconds, mbs, rps, errors))
    print(json.dumps(row))
    print(human, flush=True)


def consume(o, bootstrap, fill):
    """fill > 0: reading the mock, filled round robin with `fill` records (see the docstring)."""
    rewind = fill > 0
    conf = {"bootstrap.servers": bootstrap, "group.id": "fjord-loadgen",
            "enable.auto.commit": False, "enable.partition.eof": rewind,
            "auto.offset.reset": "earliest", "log_level": 4}
    if rewind:
        conf.update({"fetch.wait.max.ms": 10, "fetch.error.backoff.ms": 10})
    c = Consumer(conf)
    warm_up(c, o.topic)
    parts = o.partitions
    last = [fill // parts - 1 + (p < fill % parts) for p in range(parts)] if rewind else None
    low = [-1] * parts
    start = time.perf_counter()
    c.assign([TopicPartition(o.topic, p, confluent_kafka.OFFSET_BEGINNING) for p in range(parts)])
    got = nbytes = errors = rewinds = 0
    last_progress = start
    want = o.records
    # consume() waits until it has `batch` records or the timeout passed, so a call that reaches
    # the end of the mock's partition would idle 100 ms: seek back once a batch comes within one
    # batch of the end (a record count, not a set of distinct records, is what is measured).
    batch = 1000
    sought = [False] * parts
    while got < want:
        msgs = c.consume(num_messages=min(batch, want - got), timeout=0.1)
        if not msgs:
            if time.perf_counter() - last_progress > 30:
                print("loadgen.py: no record for 30 s after %d records" % got, file=sys.stderr)
                break
            continue
        for m in msgs:
            err = m.error()
            if err is None:
                got += 1
                nbytes += len(m)
                if rewind:
                    p, off = m.partition(), m.offset()
                    if low[p] < 0 or off < low[p]:
                        low[p] = off
                    if off < last[p] - batch:
                        sought[p] = False
                    elif not sought[p]:
                        c.seek(TopicPartition(o.topic, p, low[p]))
                        sought[p] = True
                        rewinds += 1
            elif err.code() == KafkaError._PARTITION_EOF:
                if rewind:
                    p = m.partition()
                    c.seek(TopicPartition(o.topic, p, low[p] if low[p] >= 0
                                          else confluent_kafka.OFFSET_BEGINNING))
                    rewinds += 1
            else:
                errors += 1
                print("loadgen.py: consume error: %s" % err, file=sys.stderr)
        last_progress = time.perf_counter()
    seconds = last_progress - start
    c.close()
    if got < want:
        errors += want - got
    if rewinds:
        print("loadgen.py: read the mock's retained tail %d times" % (rewinds + 1), file=sys.stderr)
    report(o, "consume", got, nbytes, seconds, None, errors)
    return 1 if errors else 0


def main():
    o = parse()
    if o.mode == "consume" and not o.mock:
        return consume(o, o.bootstrap, 0)
    records = o.records
    if o.mode == "consume":  # fill the mock: 64 MiB is well past what it retains
        records = max(o.partitions, min(o.records, (64 << 20) // o.size))
    p, seconds, latencies, failed = produce(o, records)
    if o.mode == "produce":
        report(o, "produce", records, len(latencies) * o.size, seconds, latencies, failed[0])
        if failed[0]:
            print("loadgen.py: first delivery error: %s" % failed[1], file=sys.stderr)
        return 1 if failed[0] else 0
    if failed[0]:
        sys.exit("loadgen.py: %d records failed while filling the mock cluster" % failed[0])
    p.flush(10)
    broker = next(iter(p.list_topics(timeout=5).brokers.values()))
    status = consume(o, "%s:%d" % (broker.host, broker.port), records)
    del p
    return status


if __name__ == "__main__":
    sys.exit(main())
