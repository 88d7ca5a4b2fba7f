"""The *queue* workload and its checker.

Producers (confluent-kafka / librdkafka, idempotent, acks=all) write unique values
``<process>:<seq>`` to the partitions of one topic (RF 3, min.insync.replicas=2), round-robin
by sequence number, at a steady rate. When the faults are over and the cluster has healed, three
different client libraries (confluent-kafka, kafka-python, aiokafka) read every partition from
offset 0 to its end.

Checker (on the history alone):
- lost: a value acknowledged (``ok``) that no final read contains (or not every read contains);
- duplicated: a value that occurs more than once across the reads;
- wrong-offset: a value read at another offset than the one its acknowledgement named;
- unexpected: a value that was never sent;
- order: per producer process and partition, values read in another order than they were sent
  (an idempotent producer keeps its order, also across retries);
- offset gaps / non-unique offsets: each partition's offsets must be 0, 1, 2, ... (no
  transactions here, so there are no control records to skip);
- divergent reads: the readers must return exactly the same (offset, value) sequence per
  partition;
- incomplete reads: a reader that could not reach the end offsets after healing.
"""
import asyncio
import os
import threading
import time

TOPIC = "jq"


def producer_conf(bootstrap, logger):
    extra = {}
    if os.environ.get("FJF_RDKAFKA_DEBUG"):       # e.g. eos,msg,protocol: librdkafka's own trace in clients.log
        extra["debug"] = os.environ["FJF_RDKAFKA_DEBUG"]
    return {**extra,
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "message.timeout.ms": 60000,
        "request.timeout.ms": 5000,
        "socket.timeout.ms": 10000,
        "socket.connection.setup.timeout.ms": 3000,
        "topic.metadata.refresh.interval.ms": 2000,
        "retry.backoff.ms": 50,
        "retry.backoff.max.ms": 500,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 1000,
        "logger": logger,
    }


class QueueWorkload:
    name = "queue"

    def __init__(self, ctx, producers=3, rate=60, partitions=4):
        self.ctx = ctx
        self.h = ctx.history
        self.n_producers = producers
        self.rate = rate                  # records/s per producer
        self.partitions = partitions
        self.stop_flag = threading.Event()
        self.threads = []
        self.lock = threading.Lock()
        self.pending = {}                 # value -> (process, partition)
        self.producer_objs = []
        self.counts = {"sent": 0}

    def topics(self):
        return {TOPIC: self.partitions}

    def setup(self):
        self.ctx.create_topic(TOPIC, self.partitions, 3, {"min.insync.replicas": "2"})

    def start(self):
        for i in range(self.n_producers):
            t = threading.Thread(target=self._run, args=(i + 1,), name=f"queue-p{i + 1}", daemon=True)
            t.start()
            self.threads.append(t)

    def _new_producer(self, proc, fatal):
        from confluent_kafka import Producer

        def on_error(err):
            if err.fatal():
                self.h.add(proc, "info", "producer-fatal", {"error": err.name(), "message": err.str()})
                fatal.set()

        conf = producer_conf(self.ctx.bootstrap, self.ctx.client_logger)
        conf["error_cb"] = on_error
        return Producer(conf)

    def _run(self, idx):
        from confluent_kafka import KafkaException
        gen = 0
        interval = 1.0 / self.rate
        while not self.stop_flag.is_set():
            proc = f"p{idx}" if gen == 0 else f"p{idx}.{gen}"
            fatal = threading.Event()
            p = self._new_producer(proc, fatal)
            with self.lock:
                self.producer_objs.append((proc, p))
            seq = 0
            next_t = time.monotonic()
            while not self.stop_flag.is_set() and not fatal.is_set():
                part = seq % self.partitions
                v = f"{proc}:{seq}"
                self._send(p, proc, v, part)
                seq += 1
                next_t += interval
                now = time.monotonic()
                if next_t < now - 2:           # fell far behind (a long stall): do not burst
                    next_t = now
                try:
                    p.poll(0)
                    while now < next_t:            # poll returns early when it serves a callback
                        p.poll(next_t - now)
                        now = time.monotonic()
                except KafkaException as e:       # a fatal error surfaces from poll
                    self.h.add(proc, "info", "producer-fatal", {"error": str(e)})
                    fatal.set()
            if fatal.is_set():
                try:
                    p.flush(10)
                except KafkaException:
                    pass
                self._abandon(proc, "fatal producer error")
                gen += 1
                continue
            # Stopping: wait for outstanding acknowledgements (bounded).
            try:
                p.flush(self.ctx.flush_timeout)
            except KafkaException as e:
                self.h.add(proc, "info", "producer-fatal", {"error": str(e)})
            self._abandon(proc, "not acknowledged before the flush timeout")
            return

    def _send(self, p, proc, v, part):
        def cb(err, msg, v=v, part=part, proc=proc):
            with self.lock:
                self.pending.pop(v, None)
            if err is None:
                self.h.add(proc, "ok", "send", {"v": v, "p": part, "o": msg.offset()})
            else:
                self.h.add(proc, "info", "send", {"v": v, "p": part, "error": err.name()})

        self.h.add(proc, "invoke", "send", {"v": v, "p": part})
        while True:
            try:
                with self.lock:
                    self.pending[v] = (proc, part)
                p.produce(TOPIC, value=v.encode(), partition=part, on_delivery=cb)
                self.counts["sent"] += 1
                return
            except BufferError:
                with self.lock:
                    self.pending.pop(v, None)
                p.poll(0.05)
                if self.stop_flag.is_set():
                    self.h.add(proc, "fail", "send", {"v": v, "p": part, "error": "queue full"})
                    return
            except Exception as e:  # noqa: BLE001 - record and give up this value
                with self.lock:
                    self.pending.pop(v, None)
                self.h.add(proc, "fail", "send", {"v": v, "p": part, "error": str(e)})
                return

    def _abandon(self, proc, why):
        with self.lock:
            left = [(v, part) for v, (pr, part) in self.pending.items() if pr == proc]
            for v, _ in left:
                self.pending.pop(v, None)
        for v, part in left:
            self.h.add(proc, "info", "send", {"v": v, "p": part, "error": why})

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(self.ctx.flush_timeout + 30)

    # ---- final reads ---------------------------------------------------------------------------

    def final_read(self, deadline_s=180):
        ends = self.ctx.end_offsets(TOPIC, self.partitions)
        if ends is None:
            self.h.add("reader", "fail", "read", {"error": "could not list end offsets"})
            return
        self.h.add("reader", "info", "end-offsets", {str(p): o for p, o in ends.items()})
        budget = max(5.0, deadline_s / 4)
        for name, fn in (("confluent", self._read_confluent), ("kafka-python", self._read_kafka_python),
                         ("aiokafka", self._read_aiokafka), ("raw", self._read_raw)):
            t0 = time.monotonic()
            try:
                recs, done = fn(ends, budget)
            except Exception as e:  # noqa: BLE001
                recs, done = {p: [] for p in ends}, False
                self.h.add(f"reader-{name}", "info", "read-error", {"error": repr(e)})
            for p in sorted(ends):
                got = {"p": p, "end": ends[p], "records": [r[:2] for r in recs.get(p, [])]}
                if name == "raw":
                    # Who wrote each record: [producer id, producer epoch, sequence].
                    got["writers"] = [r[2:] for r in recs.get(p, [])]
                self.h.add(f"reader-{name}", "ok" if done else "info", "read", got)
            self.ctx.say(f"queue: {name} read {sum(len(r) for r in recs.values())} records in {time.monotonic() - t0:.1f} s"
                         + ("" if done else " (INCOMPLETE)"))

    def _read_confluent(self, ends, budget):
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.ctx.bootstrap, "group.id": "fjf-reader", "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "isolation.level": "read_uncommitted",
                      "fetch.wait.max.ms": 100, "logger": self.ctx.client_logger})
        recs = {p: [] for p in ends}
        todo = {p for p, e in ends.items() if e > 0}
        c.assign([TopicPartition(TOPIC, p, 0) for p in todo])
        deadline = time.monotonic() + budget
        try:
            while todo and time.monotonic() < deadline:
                for m in c.consume(1000, 0.5):
                    if m.error():
                        continue
                    p, o = m.partition(), m.offset()
                    if o < ends[p]:
                        recs[p].append([o, m.value().decode()])
                    if o + 1 >= ends[p]:
                        todo.discard(p)
        finally:
            c.close()
        return recs, not todo

    def _read_kafka_python(self, ends, budget):
        from kafka import KafkaConsumer, TopicPartition
        c = KafkaConsumer(bootstrap_servers=self.ctx.bootstrap.split(","), enable_auto_commit=False,
                          auto_offset_reset="earliest", group_id=None, request_timeout_ms=10000)
        recs = {p: [] for p in ends}
        todo = {p for p, e in ends.items() if e > 0}
        tps = [TopicPartition(TOPIC, p) for p in todo]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        deadline = time.monotonic() + budget
        try:
            while todo and time.monotonic() < deadline:
                for tp, ms in c.poll(timeout_ms=500, max_records=5000).items():
                    for m in ms:
                        if m.offset < ends[tp.partition]:
                            recs[tp.partition].append([m.offset, m.value.decode()])
                        if m.offset + 1 >= ends[tp.partition]:
                            todo.discard(tp.partition)
        finally:
            c.close()
        return recs, not todo

    def _read_aiokafka(self, ends, budget):
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition

        async def go():
            c = AIOKafkaConsumer(bootstrap_servers=self.ctx.bootstrap, enable_auto_commit=False,
                                 auto_offset_reset="earliest", group_id=None, request_timeout_ms=10000)
            await c.start()
            recs = {p: [] for p in ends}
            todo = {p for p, e in ends.items() if e > 0}
            try:
                tps = [TopicPartition(TOPIC, p) for p in todo]
                c.assign(tps)
                for tp in tps:
                    c.seek(tp, 0)
                deadline = time.monotonic() + budget
                while todo and time.monotonic() < deadline:
                    got = await c.getmany(timeout_ms=500, max_records=5000)
                    for tp, ms in got.items():
                        for m in ms:
                            if m.offset < ends[tp.partition]:
                                recs[tp.partition].append([m.offset, m.value.decode()])
                            if m.offset + 1 >= ends[tp.partition]:
                                todo.discard(tp.partition)
            finally:
                await c.stop()
            return recs, not todo

        return asyncio.run(go())


    def _read_raw(self, ends, budget):
        """Fetch v4 over a plain socket from each partition's leader, the batches parsed by
        kafka-python's record reader: besides offset and value, each record's producer id,
        producer epoch and sequence (base sequence + offset delta), which the checker needs
        to tell a broker's failed deduplication from a client's re-send in a new epoch."""
        from kafka.record.memory_records import MemoryRecords
        from . import kproto
        recs = {p: [] for p in ends}
        todo = {p for p, e in ends.items() if e > 0}
        nxt = {p: 0 for p in todo}
        addrs = self.ctx.bootstrap.split(",")
        deadline = time.monotonic() + budget
        leaders = {}
        while todo and time.monotonic() < deadline:
            for p in sorted(todo):
                try:
                    if p not in leaders:
                        for a in addrs:
                            try:
                                md = kproto.metadata(a)
                            except (OSError, ValueError):
                                continue
                            part = md["topics"].get(TOPIC, {}).get("partitions", {}).get(p)
                            if part and part["leader"] in md["brokers"]:
                                leaders[p] = md["brokers"][part["leader"]]
                                break
                    if p not in leaders:
                        time.sleep(0.2)
                        continue
                    before = nxt[p]
                    err, _hw, data = kproto.fetch(leaders[p], TOPIC, p, nxt[p])
                    if err != 0:
                        leaders.pop(p, None)
                        time.sleep(0.2)
                        continue
                    mr = MemoryRecords(data)
                    while mr.has_next():
                        batch = mr.next_batch()
                        if batch is None:
                            break
                        pid, epoch, base_seq, base = batch.producer_id, batch.producer_epoch, batch.base_sequence, batch.base_offset
                        if batch.is_control_batch:
                            # No values (none are written here: no transactions); the offsets
                            # still count, so the offset checks see any that appear.
                            nxt[p] = max(nxt[p], batch.next_offset)
                            continue
                        for m in batch:
                            if m.offset >= nxt[p]:
                                seq = base_seq + (m.offset - base) if base_seq >= 0 else -1
                                if m.offset < ends[p]:
                                    recs[p].append([m.offset, m.value.decode(), pid, epoch, seq])
                                nxt[p] = m.offset + 1
                    if nxt[p] >= ends[p]:
                        todo.discard(p)
                    elif nxt[p] == before:
                        time.sleep(0.1)  # nothing new (not yet replicated, or a partial batch)
                except (OSError, ValueError):
                    leaders.pop(p, None)
                    time.sleep(0.2)
        return recs, not todo


# ---- checker ------------------------------------------------------------------------------------

def _proc_seq(v):
    proc, _, seq = v.rpartition(":")
    return proc, int(seq)


def check(entries, limit=20):
    invoked = set()
    acked = {}              # value -> (partition, offset, time)
    info = set()
    failed = set()
    reads = {}              # reader -> partition -> records
    complete = {}           # reader -> bool
    ends = {}
    writers = {}            # (partition, offset) -> (producer id, producer epoch, sequence), from the raw reader
    for e in entries:
        f, ty, v = e["f"], e["type"], e["value"]
        if f == "send":
            if ty == "invoke":
                invoked.add(v["v"])
            elif ty == "ok":
                acked[v["v"]] = (v["p"], v["o"], e["time"])
            elif ty == "info":
                info.add(v["v"])
            elif ty == "fail":
                failed.add(v["v"])
        elif f == "read" and e["process"].startswith("reader-"):
            r = e["process"]
            reads.setdefault(r, {})[v["p"]] = v["records"]
            for (o, _), w in zip(v["records"], v.get("writers", [])):
                writers[(v["p"], o)] = tuple(w)
            complete[r] = complete.get(r, True) and ty == "ok"
            ends[v["p"]] = v["end"]
    anomalies = {}

    def add(kind, item):
        lst = anomalies.setdefault(kind, [])
        lst.append(item)

    if not reads:
        add("no-final-read", "the final reads did not happen")
    for r, ok in complete.items():
        if not ok:
            add("incomplete-read", f"{r} did not reach the end offsets {ends}")
    # Readers agree?
    names = sorted(reads)
    if names:
        ref = reads[names[0]]
        for r in names[1:]:
            for p in sorted(set(ref) | set(reads[r])):
                a, b = ref.get(p, []), reads[r].get(p, [])
                if a != b and complete.get(r) and complete.get(names[0]):
                    i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
                    add("divergent-reads", f"partition {p}: {names[0]} and {r} differ at index {i}: "
                        f"{a[i] if i < len(a) else 'end'} vs {b[i] if i < len(b) else 'end'}")
    def resent_after_bump(v, where):
        """Whether the copies of v are one producer's re-send in a later producer epoch,
        acknowledged (if with an offset) at the last copy: librdkafka bumps its epoch after
        OUT_OF_ORDER_SEQUENCE_NUMBER on a pipelined batch and re-sends every unacknowledged
        batch with new sequences (librdkafka issue #4953, the same against Apache Kafka);
        no broker can recognise those, as KIP-98 sequences start again with each epoch.
        A broker that fails to deduplicate writes the same (producer, epoch, sequence) twice,
        which stays a violation."""
        ws = [writers.get(x) for x in where]
        if len({p for p, _ in where}) != 1:
            return False  # a client re-sends to the partition it chose; one copy per partition is not that
        if any(w is None or w[0] < 0 for w in ws) or len({w[0] for w in ws}) != 1:
            return False
        epochs = [w[1] for w in ws]
        if any(b <= a for a, b in zip(epochs, epochs[1:])):
            return False
        ack = acked.get(v)
        return ack is None or ack[1] is None or (ack[0], ack[1]) == where[-1]

    resent = {}             # value -> copies, for values re-sent by their client after an epoch bump
    # Per reader: offsets, duplicates, lost, order.
    lost_all = set()
    seen_any = {}
    for r in names:
        seen = {}
        for p, recs in reads[r].items():
            offs = [o for o, _ in recs]
            if offs:
                if offs[0] != 0:
                    add("offset-gap", f"{r} partition {p}: first offset {offs[0]}, not 0")
                for a, b in zip(offs, offs[1:]):
                    if b == a:
                        add("duplicate-offset", f"{r} partition {p}: offset {a} twice")
                    elif b != a + 1:
                        add("offset-gap", f"{r} partition {p}: offsets jump {a} -> {b}")
                if complete.get(r) and offs[-1] + 1 != ends.get(p, offs[-1] + 1):
                    add("offset-gap", f"{r} partition {p}: last offset {offs[-1]} but end offset {ends.get(p)}")
            elif complete.get(r) and ends.get(p, 0) > 0:
                add("offset-gap", f"{r} partition {p}: nothing read below end offset {ends.get(p)}")
            for o, v in recs:
                seen.setdefault(v, []).append((p, o))
        for v, where in seen.items():
            if len(where) > 1:
                if resent_after_bump(v, sorted(where)):
                    resent[v] = sorted(where)
                else:
                    add("duplicate", f"{v} read {len(where)} times by {r} at {where}"
                        + (f" written as {[writers.get(x) for x in where]}" if writers else ""))
            if v not in invoked:
                add("unexpected", f"{v} read by {r} at {where} was never sent")
        if complete.get(r):
            for v, (p, o, t) in acked.items():
                if v not in seen:
                    lost_all.add(v)
                else:
                    wp, wo = seen[v][-1] if v in resent else seen[v][0]
                    # librdkafka reports no offset (None) for a retried batch the broker
                    # recognised as a duplicate: only the partition can be checked then.
                    if wp != p or (o is not None and wo != o):
                        add("wrong-offset", f"{v} acknowledged at {p}/{o} but read by {r} at {wp}/{wo}")
        seen_any.setdefault(r, seen)
    for v in sorted(lost_all, key=lambda x: acked[x][2]):
        p, o, t = acked[v]
        add("lost", f"{v} acknowledged at partition {p} offset {o} (t={t:.3f}s) is missing from the final reads")
    # Order per producer per partition (in the first complete reader).
    for r in names:
        if not complete.get(r):
            continue
        for p, recs in reads[r].items():
            last = {}
            for o, v in recs:
                if v in resent and (p, o) != resent[v][0]:
                    continue  # the order is that of the first copies
                proc, seq = _proc_seq(v)
                if proc in last and seq < last[proc][0]:
                    add("order", f"partition {p}: {v} at offset {o} after {proc}:{last[proc][0]} at offset {last[proc][1]}")
                last[proc] = (seq, o)
        break
    stats = {
        "sent": len(invoked), "ok": len(acked), "info": len(info - set(acked)), "fail": len(failed),
        "read": max((sum(len(x) for x in rr.values()) for rr in reads.values()), default=0),
        "indeterminate_read": len([v for v in info if any(v in s for s in seen_any.values()) and v not in acked]),
        "lost": len(lost_all),
        "resent_after_epoch_bump": len(resent),
    }
    counts = {k: len(v) for k, v in anomalies.items()}
    out = {"valid": not anomalies, "stats": stats, "counts": counts,
           "anomalies": {k: v[:limit] for k, v in anomalies.items()}}
    if resent:
        out["notes"] = [f"{v} re-sent by its client in a new producer epoch (librdkafka #4953): "
                        f"{[(x, writers.get(x)) for x in w]}" for v, w in list(resent.items())[:limit]]
    return out
