"""Faults, one at a time, from a seeded schedule.

``plan()`` draws the next fault from the seed alone — its kind, how its targets are chosen
("the leader of queue partition 2", "the controller leader", "the node at fraction 0.37 of the
eligible ones"), its duration and parameters — so a seed always yields the same schedule. The
concrete node a selector names depends on the cluster at that moment (which node leads what).

Kinds:
  kill                 kill -9 a node, restart it after 0.5-4 s
  torn-segment         kill -9 a broker, cut its partition segment inside one of its last batches
                       (or append garbage), restart (the replicas hold what the cut removed)
  torn-metadata        kill -9 a node, leave a torn (partial) batch or garbage after the last
                       complete batch of __cluster_metadata-0, restart
  pause                SIGSTOP a node for broker.session.timeout.ms + 1-4 s, then SIGCONT
  partition-majority   split the nodes in two, one side without a controller majority
  partition-leader     isolate the leader of a queue partition or the controller leader
  partition-bridge     two halves that cannot talk, and one node that talks to both
  partition-one-way    one node stops receiving from another (the other way still works)
  slow-net             a node's link limited to 512 kbit/s with up to 400 ms queueing (tbf)
  packet-loss          a node drops 10-30 % of the packets it receives (nft numgen)
  disk-full            a broker's data tmpfs is filled, then freed; a probe producer records the
                       errors produce returns meanwhile
"""
import os
import random
import struct
import threading
import time

from . import kproto

ALL_KINDS = ["kill", "torn-segment", "torn-metadata", "pause", "partition-majority", "partition-leader",
             "partition-bridge", "partition-one-way", "slow-net", "packet-loss", "disk-full"]
NETWORK_KINDS = {"partition-majority", "partition-leader", "partition-bridge", "partition-one-way",
                 "slow-net", "packet-loss"}
PROBE_TOPIC = "jprobe"


def batch_starts(path):
    """Start positions of the complete record batches in a log segment, and the end of the
    last complete one."""
    starts = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">i", data[pos + 8:pos + 12])
        if length <= 0 or pos + 12 + length > len(data):
            break
        starts.append(pos)
        pos += 12 + length
    return starts, pos, data


class Nemesis:
    def __init__(self, ctx, kinds, seed, partition_duration=None):
        self.partition_duration = partition_duration
        self.ctx = ctx
        self.cluster = ctx.cluster
        self.net = ctx.net
        self.h = ctx.history
        self.rng = random.Random(seed)
        self.kinds = list(kinds)
        self.count = 0
        self.stop_event = ctx.stop_event
        self.active = None
        self.filler = None
        self.deadline = None          # time.monotonic() at which the fault phase ends

    # ---- the schedule --------------------------------------------------------------------------

    def plan(self):
        """The next fault, from the seed only."""
        r = self.rng
        kind = r.choice(self.kinds)
        st = self.cluster.session_timeout_ms / 1000.0
        p = {"kind": kind, "pick": r.random(), "pick2": r.random(), "partition": r.randrange(64)}
        sel = r.random()
        if kind in ("kill", "pause"):
            p["target"] = "partition-leader" if sel < 0.5 else ("controller-leader" if sel < 0.7 else "random")
        elif kind == "partition-leader":
            p["target"] = "partition-leader" if sel < 0.6 else "controller-leader"
        else:
            p["target"] = "random"
        if kind == "kill":
            p["duration"] = round(r.uniform(0.5, 4.0), 2)
        elif kind in ("torn-segment", "torn-metadata"):
            p["duration"] = round(r.uniform(0.5, 2.0), 2)
            p["mode"] = r.choice(["truncate", "garbage"] if kind == "torn-segment" else ["partial-batch", "garbage"])
            p["batches"] = r.randint(1, 3)
            p["fraction"] = round(r.random(), 4)
            p["garbage"] = r.randint(1, 200)
        elif kind == "pause":
            p["duration"] = round(st + r.uniform(1.0, 4.0), 2)
        elif kind.startswith("partition"):
            lo, hi = self.partition_duration or (2.0, st + 6.0)
            p["duration"] = round(r.uniform(lo, hi), 2)
        elif kind == "slow-net":
            p["duration"] = round(r.uniform(4.0, 10.0), 2)
        elif kind == "packet-loss":
            p["duration"] = round(r.uniform(4.0, 10.0), 2)
            p["percent"] = r.choice([10, 20, 30])
        elif kind == "disk-full":
            p["duration"] = round(r.uniform(5.0, 15.0), 2)
        return p

    # ---- targets -------------------------------------------------------------------------------

    def _pick(self, nodes, frac):
        nodes = sorted(nodes, key=lambda n: n.id)
        return nodes[min(len(nodes) - 1, int(frac * len(nodes)))]

    def partition_leader(self, index):
        """The broker leading queue partition index (mod count), as a live broker says."""
        topics = self.ctx.watched_topics()
        if not topics:
            return None
        name = sorted(topics)[0]
        for n in self.cluster.brokers:
            if n.state != "up":
                continue
            try:
                md = kproto.metadata(n.broker_addr, timeout=2)
            except Exception:  # noqa: BLE001
                continue
            t = md["topics"].get(name)
            if not t or not t["partitions"]:
                continue
            parts = sorted(t["partitions"])
            leader = t["partitions"][parts[index % len(parts)]]["leader"]
            if leader in self.cluster.nodes:
                return self.cluster.nodes[leader]
        return None

    def controller_leader(self):
        for n in self.cluster.controllers:
            if n.state != "up":
                continue
            try:
                q = kproto.describe_quorum(n.controller_addr, timeout=2)
            except Exception:  # noqa: BLE001
                continue
            if q.get("leader", -1) in self.cluster.nodes:
                return self.cluster.nodes[q["leader"]]
        return None

    def resolve(self, p, eligible):
        n = None
        if p["target"] == "partition-leader":
            n = self.partition_leader(p["partition"])
        elif p["target"] == "controller-leader":
            n = self.controller_leader()
        if n is None or n not in eligible:
            n = self._pick(eligible, p["pick"])
        return n

    # ---- running one fault -----------------------------------------------------------------------

    def hold(self, seconds):
        """Waits out a fault's duration, cut short at the end of the fault phase (--time-limit)."""
        if self.deadline is not None:
            seconds = max(0.5, min(seconds, self.deadline - time.monotonic()))
        self.stop_event.wait(seconds)

    def run(self, p):
        """Injects the fault, holds it, heals it; returns the fault record."""
        self.count += 1
        fid = self.count
        c = self.cluster
        kind = p["kind"]
        rec = {"id": fid, "kind": kind, "plan": p}
        up = [n for n in c.nodes.values() if n.state == "up"]
        if not up:
            return None
        if kind in ("kill", "pause", "torn-metadata"):
            n = self.resolve(p, up)
            rec["node"] = n.id
            rec["role"] = self._role(n)
            self.h.add("nemesis", "info", "start", rec)
            if kind == "pause":
                c.pause(n)
                self.hold(p["duration"])
                c.resume(n)
            else:
                c.kill9(n)
                if kind == "torn-metadata":
                    rec["tear"] = self.tear_metadata(n, p)
                self.hold(p["duration"])
                c.start(n)
                rec["ready"] = c.wait_ready(n, 60)
        elif kind == "torn-segment":
            brokers = [n for n in up if n.is_broker]
            n = self.resolve(p, brokers)
            rec["node"] = n.id
            rec["role"] = self._role(n)
            self.h.add("nemesis", "info", "start", rec)
            c.kill9(n)
            rec["tear"] = self.tear_segment(n, p)
            self.hold(p["duration"])
            c.start(n)
            rec["ready"] = c.wait_ready(n, 60)
        elif kind.startswith("partition"):
            pairs, desc = self.partition_groups(p, up)
            rec["cut"] = pairs
            rec["desc"] = desc
            self.h.add("nemesis", "info", "start", rec)
            if kind == "partition-one-way":
                a, b = pairs[0]
                self.net.drop(b, a)
            else:
                self.net.cut(pairs)
            self.hold(p["duration"])
            self.net.heal()
        elif kind == "slow-net":
            n = self._pick(up, p["pick"])
            rec["node"] = n.id
            self.h.add("nemesis", "info", "start", rec)
            self.net.set_slow(n.id)
            self.hold(p["duration"])
            self.net.heal()
        elif kind == "packet-loss":
            n = self._pick(up, p["pick"])
            rec["node"] = n.id
            self.h.add("nemesis", "info", "start", rec)
            self.net.set_loss(n.id, p["percent"])
            self.hold(p["duration"])
            self.net.heal()
        elif kind == "disk-full":
            brokers = [n for n in up if n.is_broker and c.has_tmpfs(n)]
            if not brokers:
                return None
            n = self.partition_leader(p["partition"])
            if n is None or n not in brokers:
                n = self._pick(brokers, p["pick"])
            rec["node"] = n.id
            rec["role"] = self._role(n)
            self.h.add("nemesis", "info", "start", rec)
            rec["filled_bytes"] = self.fill(n)
            rec["probe"] = self.probe(p["duration"])
            self.unfill(n)
        self.h.add("nemesis", "info", "stop", {"id": fid, "kind": kind})
        return rec

    def _role(self, n):
        roles = []
        cl = self.controller_leader() if n.state == "up" else None
        if cl is not None and cl.id == n.id:
            roles.append("controller-leader")
        return roles

    def partition_groups(self, p, up):
        """(pairs of nodes that cannot talk, description); one-way: [[from, to]]."""
        c = self.cluster
        ids = sorted(c.nodes)
        kind = p["kind"]
        rng = random.Random(int(p["pick"] * 1e9))

        def between(x, y):
            return [[a, b] for a in x for b in y]

        if kind == "partition-majority":
            ctrl = sorted(n.id for n in c.controllers)
            rng.shuffle(ctrl)
            minority = ctrl[:len(ctrl) // 2]
            majority = ctrl[len(ctrl) // 2:]
            for b in sorted(n.id for n in c.brokers if not n.is_controller):
                (minority if rng.random() < 0.5 else majority).append(b)
            return between(sorted(majority), sorted(minority)), f"majority {sorted(majority)} / minority {sorted(minority)}"
        if kind == "partition-leader":
            n = self.resolve(p, up)
            return between([n.id], [i for i in ids if i != n.id]), f"isolate {p['target']} n{n.id}"
        if kind == "partition-bridge":
            order = list(ids)
            rng.shuffle(order)
            bridge = order[0]
            rest = order[1:]
            left, right = sorted(rest[:len(rest) // 2]), sorted(rest[len(rest) // 2:])
            return between(left, right), f"n{bridge} bridges {left} and {right}"
        if kind == "partition-one-way":
            order = list(ids)
            rng.shuffle(order)
            a, b = order[0], order[1]
            return [[a, b]], f"n{b} stops receiving from n{a}"
        raise ValueError(kind)

    # ---- torn tails ----------------------------------------------------------------------------

    def tear_segment(self, n, p):
        topics = sorted(self.ctx.watched_topics()) or [""]
        cands = []
        for d in sorted(os.listdir(n.data_dir)):
            full = os.path.join(n.data_dir, d)
            if not os.path.isdir(full) or d.startswith("__"):
                continue
            if not any(d.startswith(t + "-") for t in topics if t):
                continue
            logs = sorted(f for f in os.listdir(full) if f.endswith(".log"))
            logs = [f for f in logs if os.path.getsize(os.path.join(full, f)) > 0]
            if logs:
                cands.append(os.path.join(full, logs[-1]))
        if not cands:
            return {"skipped": "no non-empty segment"}
        path = cands[p["partition"] % len(cands)]
        return self._tear(path, p, metadata=False)

    def tear_metadata(self, n, p):
        d = os.path.join(n.meta_dir, "__cluster_metadata-0")
        logs = sorted(f for f in os.listdir(d) if f.endswith(".log")) if os.path.isdir(d) else []
        if not logs:
            return {"skipped": "no metadata segment"}
        return self._tear(os.path.join(d, logs[-1]), p, metadata=True)

    def _tear(self, path, p, metadata):
        starts, end, data = batch_starts(path)
        size = len(data)
        out = {"file": path, "size": size, "mode": p["mode"], "complete_batches": len(starts)}
        rng = random.Random(int(p["fraction"] * 1e6) + p["garbage"])
        if p["mode"] == "truncate" and starts:
            k = min(p["batches"], len(starts))
            first = starts[-k]
            cut = first + 1 + int(p["fraction"] * max(0, end - first - 2))
            cut = min(cut, size - 1)
            with open(path, "r+b") as f:
                f.truncate(cut)
            out.update(cut_at=cut, removed=size - cut, batches_touched=k)
        elif p["mode"] == "partial-batch" and starts:
            last = data[starts[-1]:end]
            m = 1 + int(p["fraction"] * (len(last) - 2)) if len(last) > 2 else 1
            with open(path, "ab") as f:
                f.write(last[:m])
            out.update(appended=m, of_batch_bytes=len(last))
        else:
            junk = bytes(rng.getrandbits(8) for _ in range(p["garbage"]))
            with open(path, "ab") as f:
                f.write(junk)
            out.update(mode="garbage", appended=len(junk))
        os.sync()
        return out

    # ---- full disk -----------------------------------------------------------------------------

    def fill(self, n):
        path = os.path.join(n.mount_dir, "fjf-filler")
        self.filler = path
        st = os.statvfs(n.mount_dir)
        free = st.f_bavail * st.f_frsize
        total = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            try:
                os.posix_fallocate(fd, 0, free)
                total = free
            except OSError:
                pass
            chunk = b"\0" * (1 << 20)
            os.lseek(fd, total, 0)
            while True:
                try:
                    w = os.write(fd, chunk if total == 0 else chunk[:4096])
                except OSError:
                    break
                if w <= 0:
                    break
                total += w
        finally:
            os.close(fd)
        return total

    def unfill(self, n):
        try:
            os.unlink(os.path.join(n.mount_dir, "fjf-filler"))
        except FileNotFoundError:
            pass
        self.filler = None

    def probe(self, duration):
        """A plain producer (acks=all, no retries, no idempotence) writes one record to every
        partition of the probe topic every 0.3 s and counts the errors by name."""
        from confluent_kafka import Producer
        errors = {}
        oks = [0]
        p = Producer({"bootstrap.servers": self.ctx.bootstrap, "acks": "all", "enable.idempotence": False,
                      "retries": 0, "message.timeout.ms": 3000, "request.timeout.ms": 2500,
                      "linger.ms": 0, "logger": self.ctx.client_logger})

        def cb(err, msg):
            if err is None:
                oks[0] += 1
            else:
                errors[err.name()] = errors.get(err.name(), 0) + 1

        end = time.monotonic() + duration
        parts = self.ctx.probe_partitions
        while time.monotonic() < end and not self.stop_event.is_set():
            for i in range(parts):
                try:
                    p.produce(PROBE_TOPIC, value=b"probe", partition=i, on_delivery=cb)
                except BufferError:
                    pass
            p.poll(0.3)
        p.flush(4)
        return {"ok": oks[0], "errors": errors}

    def heal_all(self):
        """Removes every fault in place (used at the end and on errors)."""
        if self.net is not None:
            try:
                self.net.heal()
            except Exception:  # noqa: BLE001
                pass
        for n in self.cluster.nodes.values():
            if n.mount_dir and os.path.exists(os.path.join(n.mount_dir, "fjf-filler")):
                self.unfill(n)
            if n.state == "paused":
                self.cluster.resume(n)
