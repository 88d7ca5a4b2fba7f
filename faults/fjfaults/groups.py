"""The *groups* workload and its checker.

A feeder (confluent-kafka, acks=all) writes to a topic; three aiokafka consumers in one group
(classic protocol) consume it and commit the offsets they have processed (explicit commits,
each bounded by a timeout) while faults happen. A monitor (aiokafka's admin client) reads the
group's committed offsets every two seconds, and once more after healing.

Checker (on the history alone), per partition:
- not lost / not backwards (reads): a read of the committed offsets must return at least the
  largest offset whose commit was acknowledged before the read began;
- not backwards (commits): a commit acknowledged after another one completed must not commit a
  smaller offset (the classic protocol fences members of older generations, and a new owner
  starts from the committed offset, so offsets only move forward);
- not backwards (reads): a read must not return less than a read that completed before it began;
- no phantom: a read returns an offset some commit asked for (or nothing, before any commit).
"""
import asyncio
import threading
import time

TOPIC = "jg"
GROUP = "fjf-group"


class GroupsWorkload:
    name = "groups"

    def __init__(self, ctx, consumers=3, partitions=4, rate=40):
        self.ctx = ctx
        self.h = ctx.history
        self.n_consumers = consumers
        self.partitions = partitions
        self.rate = rate
        self.stop_flag = threading.Event()
        self.threads = []
        self._admin_client = None
        self._loop = None

    def topics(self):
        return {TOPIC: self.partitions}

    def setup(self):
        self.ctx.create_topic(TOPIC, self.partitions, 3, {"min.insync.replicas": "2"})

    def start(self):
        for target, name in ((self._feeder, "groups-feeder"), (self._members, "groups-members"),
                             (self._monitor, "groups-monitor")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self.threads.append(t)

    def _feeder(self):
        from confluent_kafka import Producer
        from .queue import producer_conf
        p = Producer(producer_conf(self.ctx.bootstrap, self.ctx.client_logger))
        i = 0
        interval = 1.0 / self.rate
        while not self.stop_flag.is_set():
            try:
                p.produce(TOPIC, value=b"g%d" % i, partition=i % self.partitions)
            except BufferError:
                pass
            i += 1
            p.poll(interval)
        p.flush(5)

    def _members(self):
        asyncio.run(self._members_async())

    async def _members_async(self):
        await asyncio.gather(*(self._member(i + 1) for i in range(self.n_consumers)))

    async def _member(self, i):
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition
        proc = f"c{i}"
        gen = 0
        while not self.stop_flag.is_set():
            c = AIOKafkaConsumer(TOPIC, group_id=GROUP, bootstrap_servers=self.ctx.bootstrap,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 session_timeout_ms=10000, heartbeat_interval_ms=1000,
                                 max_poll_interval_ms=60000, request_timeout_ms=10000, retry_backoff_ms=100,
                                 client_id=f"fjf-{proc}-{gen}")
            gen += 1
            try:
                await asyncio.wait_for(c.start(), 30)
            except Exception as e:  # noqa: BLE001
                self.h.add(proc, "info", "member-start", {"error": repr(e)})
                try:
                    await asyncio.wait_for(c.stop(), 10)
                except Exception:  # noqa: BLE001
                    pass
                await asyncio.sleep(1)
                continue
            last_commit = 0.0
            positions = {}
            try:
                while not self.stop_flag.is_set():
                    got = await asyncio.wait_for(c.getmany(timeout_ms=300, max_records=200), 30)
                    for tp, ms in got.items():
                        if ms:
                            positions[tp.partition] = ms[-1].offset + 1
                    # Commit only partitions this member still owns: the classic protocol accepts a
                    # commit from a current-generation member for any partition (so does Kafka),
                    # and a partition lost in a rebalance now belongs to a member that started
                    # from the committed offset.
                    owned = {tp.partition for tp in c.assignment()}
                    for p in [p for p in positions if p not in owned]:
                        del positions[p]
                    if positions and time.monotonic() - last_commit > 0.3:
                        offsets = dict(positions)
                        positions.clear()
                        last_commit = time.monotonic()
                        value = {str(p): o for p, o in offsets.items()}
                        self.h.add(proc, "invoke", "commit", value)
                        try:
                            await asyncio.wait_for(c.commit({TopicPartition(TOPIC, p): o for p, o in offsets.items()}), 10)
                            self.h.add(proc, "ok", "commit", value)
                        except asyncio.TimeoutError:
                            self.h.add(proc, "info", "commit", dict(value, error="timeout"))
                        except Exception as e:  # noqa: BLE001 - CommitFailedError, IllegalStateError, ...
                            self.h.add(proc, "fail", "commit", dict(value, error=type(e).__name__))
            except Exception as e:  # noqa: BLE001 - restart the member
                self.h.add(proc, "info", "member-error", {"error": repr(e)})
            finally:
                try:
                    await asyncio.wait_for(c.stop(), 10)
                except Exception:  # noqa: BLE001
                    pass

    def _read_committed(self, proc, timeout=10):
        """OffsetFetch through aiokafka's admin client (in the monitor's own event loop)."""
        return self._loop.run_until_complete(self._read_committed_async(proc, timeout))

    async def _read_committed_async(self, proc, timeout):
        import asyncio
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.structs import TopicPartition
        self.h.add(proc, "invoke", "read-committed", None)
        try:
            if self._admin_client is None:
                a = AIOKafkaAdminClient(bootstrap_servers=self.ctx.bootstrap, request_timeout_ms=timeout * 1000,
                                        client_id="fjf-group-monitor")
                await asyncio.wait_for(a.start(), timeout)
                self._admin_client = a
            res = await asyncio.wait_for(self._admin_client.list_consumer_group_offsets(
                GROUP, partitions=[TopicPartition(TOPIC, p) for p in range(self.partitions)]), timeout)
            if not res:
                # A coordinator error (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS) comes back
                # as a top-level error with no partitions, which aiokafka does not raise: an
                # answer about the requested partitions always lists them, so this read failed.
                raise RuntimeError("OffsetFetch answered no partitions (a coordinator error)")
            value = {str(tp.partition): om.offset for tp, om in res.items()}
            for p in range(self.partitions):
                value.setdefault(str(p), -1)
            self.h.add(proc, "ok", "read-committed", value)
            return value
        except Exception as e:  # noqa: BLE001
            self.h.add(proc, "info", "read-committed", {"error": repr(e)})
            if self._admin_client is not None:
                try:
                    await asyncio.wait_for(self._admin_client.close(), 5)
                except Exception:  # noqa: BLE001
                    pass
                self._admin_client = None
            return None

    def _monitor(self):
        import asyncio
        self._loop = asyncio.new_event_loop()
        while not self.stop_flag.wait(2.0):
            self._read_committed("gmon")

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(60)

    def final_read(self, deadline_s=60):
        import asyncio
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if self._read_committed("gfinal") is not None:
                self.ctx.say("groups: final committed offsets read")
                return
            time.sleep(2)
        self.ctx.say("groups: could not read the committed offsets after healing")


def check(entries, limit=20):
    commits = []   # (invoke t, complete t, {p: off}, process)
    reads = []     # (invoke t, complete t, {p: off}, process)
    invoked_offsets = {}
    open_ = {}
    stats = {"commit": {"ok": 0, "fail": 0, "info": 0}, "read": {"ok": 0, "fail": 0, "info": 0}}
    final = None
    for e in entries:
        f = e["f"]
        if f not in ("commit", "read-committed"):
            continue
        proc = e["process"]
        if e["type"] == "invoke":
            open_[proc] = e
            if f == "commit":
                for p, o in e["value"].items():
                    invoked_offsets.setdefault(p, set()).add(o)
            continue
        inv = open_.pop(proc, None)
        if inv is None:
            continue
        stats["commit" if f == "commit" else "read"][e["type"]] += 1
        if e["type"] != "ok":
            continue
        v = {p: o for p, o in e["value"].items() if p != "error"}
        rec = (inv["time"], e["time"], v, proc)
        (commits if f == "commit" else reads).append(rec)
        if proc == "gfinal":
            final = rec
    out = {}

    def add(kind, msg):
        out.setdefault(kind, []).append(msg)

    parts = sorted({p for c in commits for p in c[2]} | {p for r in reads for p in r[2]}, key=int)
    for p in parts:
        cs = sorted([c for c in commits if p in c[2]], key=lambda c: c[0])
        by_complete = sorted(cs, key=lambda c: c[1])
        # commits: a later commit never moves backwards
        j, best = 0, None
        for c in cs:
            while j < len(by_complete) and by_complete[j][1] < c[0]:
                d = by_complete[j]
                if best is None or d[2][p] > best[2][p]:
                    best = d
                j += 1
            if best is not None and c[2][p] < best[2][p]:
                add("commit-backwards", f"partition {p}: {c[3]} committed {c[2][p]} (t={c[0]:.3f}-{c[1]:.3f}s) "
                    f"after {best[3]}'s commit of {best[2][p]} was acknowledged (t={best[1]:.3f}s)")
        # reads
        rs = sorted([r for r in reads if p in r[2]], key=lambda r: r[0])
        j, best = 0, None
        rs_by_complete = sorted(rs, key=lambda r: r[1])
        k, best_read = 0, None
        for r in rs:
            while j < len(by_complete) and by_complete[j][1] < r[0]:
                d = by_complete[j]
                if best is None or d[2][p] > best[2][p]:
                    best = d
                j += 1
            while k < len(rs_by_complete) and rs_by_complete[k][1] < r[0]:
                d = rs_by_complete[k]
                if best_read is None or d[2][p] > best_read[2][p]:
                    best_read = d
                k += 1
            got = r[2][p]
            if best is not None and got < best[2][p]:
                add("committed-offset-lost", f"partition {p}: read {got} at t={r[0]:.3f}s ({r[3]}), but {best[3]}'s commit of "
                    f"{best[2][p]} was acknowledged at t={best[1]:.3f}s")
            if best_read is not None and got < best_read[2][p]:
                add("read-backwards", f"partition {p}: read {got} at t={r[0]:.3f}s after a read of {best_read[2][p]} "
                    f"(completed t={best_read[1]:.3f}s)")
            if got >= 0 and got not in invoked_offsets.get(p, set()):
                add("phantom-offset", f"partition {p}: read {got} at t={r[0]:.3f}s, which no commit asked for")
    if final is None:
        add("no-final-read", "the committed offsets could not be read after healing")
    stats["partitions"] = len(parts)
    return {"valid": not out, "stats": stats, "counts": {k: len(v) for k, v in out.items()},
            "anomalies": {k: v[:limit] for k, v in out.items()}}
