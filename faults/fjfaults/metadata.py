"""The *metadata* workload and its checkers.

Admin clients (confluent-kafka AdminClient, each worker with its own topic names so operations
on one name never overlap) create and delete topics, increase partitions and change
``retention.ms`` while faults happen.

Checker (on the history alone):
- a model per topic name: the set of states (absent, or (partition count, retention.ms)) the
  topic may be in. An acknowledged operation must be possible and moves every state; an
  operation that failed or timed out may or may not have happened (a broker that forwards to
  the controller may retry an operation that had already been applied and then answer with an
  error), so both outcomes stay possible;
- after healing, every broker (asked directly, not through a client library's routing) must
  show each name in a state the model allows, and all brokers the same state: acknowledged
  operations are visible on every node;
- after healing, every partition of every topic has a leader and the leader is in the ISR;
- all along (the monitor, once a second): a leader reported by any broker is in that broker's
  ISR, a broker's leader epoch of a partition (by topic id) never decreases, and a controller's
  quorum epoch never decreases.
"""
import random
import threading
import time

from . import kproto

RETENTION = "retention.ms"


class MetadataWorkload:
    name = "metadata"

    def __init__(self, ctx, workers=2, names_per_worker=4, seed=0):
        self.ctx = ctx
        self.h = ctx.history
        self.workers = workers
        self.names = {w: [f"m{w}-{k}" for k in range(names_per_worker)] for w in range(1, workers + 1)}
        self.stop_flag = threading.Event()
        self.threads = []
        self.seed = seed

    def topics(self):
        return {}

    def setup(self):
        pass

    def start(self):
        for w in self.names:
            t = threading.Thread(target=self._run, args=(w,), name=f"admin{w}", daemon=True)
            t.start()
            self.threads.append(t)

    def _admin(self):
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": self.ctx.bootstrap, "socket.timeout.ms": 10000,
                            "socket.connection.setup.timeout.ms": 3000, "reconnect.backoff.max.ms": 1000,
                            "logger": self.ctx.client_logger})

    def _run(self, w):
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                           NewTopic)
        rng = random.Random(self.seed * 1000 + w)
        proc = f"admin{w}"
        a = self._admin()
        while not self.stop_flag.is_set():
            name = rng.choice(self.names[w])
            op = rng.choices(["create", "delete", "partitions", "config"], [3, 2, 2, 3])[0]
            if op == "create":
                value = {"topic": name, "partitions": rng.randint(1, 3), "rf": rng.choice([2, 3]),
                         "retention": rng.randint(1, 10 ** 6) * 1000}
                call = lambda v=value: a.create_topics(
                    [NewTopic(v["topic"], v["partitions"], v["rf"], config={RETENTION: str(v["retention"])})],
                    request_timeout=10, operation_timeout=10)[v["topic"]]
            elif op == "delete":
                value = {"topic": name}
                call = lambda v=value: a.delete_topics([v["topic"]], request_timeout=10, operation_timeout=10)[v["topic"]]
            elif op == "partitions":
                value = {"topic": name, "partitions": rng.randint(2, 6)}
                call = lambda v=value: a.create_partitions([NewPartitions(v["topic"], v["partitions"])],
                                                           request_timeout=10, operation_timeout=10)[v["topic"]]
            else:
                value = {"topic": name, "retention": rng.randint(1, 10 ** 6) * 1000}

                def call(v=value):
                    res = ConfigResource(ConfigResource.Type.TOPIC, v["topic"], incremental_configs=[
                        ConfigEntry(RETENTION, str(v["retention"]), incremental_operation=AlterConfigOpType.SET)])
                    return list(a.incremental_alter_configs([res], request_timeout=10).values())[0]
            self.h.add(proc, "invoke", op, value)
            try:
                call().result(timeout=15)
                self.h.add(proc, "ok", op, value)
            except KafkaException as e:
                err = e.args[0] if e.args else None
                name_ = err.name() if hasattr(err, "name") else str(e)
                timeout_like = name_ in ("_TIMED_OUT", "REQUEST_TIMED_OUT", "_TRANSPORT", "NOT_CONTROLLER",
                                         "_DESTROY", "_ALL_BROKERS_DOWN", "NETWORK_EXCEPTION", "_WAIT_COORD")
                self.h.add(proc, "info" if timeout_like else "fail", op, dict(value, error=name_))
            except Exception as e:  # noqa: BLE001 - futures time out with concurrent.futures.TimeoutError
                self.h.add(proc, "info", op, dict(value, error=type(e).__name__))
                a = self._admin()
            self.stop_flag.wait(rng.uniform(0.2, 1.0))

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(40)

    def all_names(self):
        return [n for ns in self.names.values() for n in ns]

    def final_read(self, deadline_s=60):
        """Asks every broker for its view until all agree with the model (or the time is up);
        the last views are written to the history."""
        names = self.all_names()
        entries = [e for e in self.ctx.history_entries() if e["process"].startswith("admin")]
        model = build_model(entries)[0]
        deadline = time.monotonic() + deadline_s
        attempt = 0
        while True:
            attempt += 1
            views = {}
            for n in self.ctx.cluster.brokers:
                views[n.id] = broker_view(n.broker_addr, names)
            problems = compare(model, views)
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(2)
        for nid, v in views.items():
            self.h.add(f"meta-reader-n{nid}", "ok" if v is not None else "info", "read", {"node": nid, "view": v})
        self.ctx.say(f"metadata: final views from {len(views)} brokers after {attempt} attempt(s)"
                     + (f"; still differing: {problems[:3]}" if problems else ""))


def broker_view(addr, names):
    """{name: None | [partitions, retention, {p: [leader, isr]}]} as broker addr sees it."""
    try:
        md = kproto.metadata(addr, timeout=5)
    except Exception as e:  # noqa: BLE001
        return {"error": repr(e)}
    out = {}
    present = [n for n in names if n in md["topics"] and md["topics"][n]["error"] == 0]
    configs = {}
    if present:
        try:
            configs = kproto.describe_topic_configs(addr, present, [RETENTION], timeout=5)
        except Exception as e:  # noqa: BLE001
            return {"error": repr(e)}
    for n in names:
        if n not in present:
            out[n] = None
            continue
        t = md["topics"][n]
        err, cfg = configs.get(n, (-1, {}))
        ret = int(cfg[RETENTION]) if err == 0 and cfg.get(RETENTION) is not None else None
        out[n] = [len(t["partitions"]), ret, {str(p): [x["leader"], x["isr"]] for p, x in t["partitions"].items()}]
    return out


# ---- model ------------------------------------------------------------------------------------

def _step(states, op, v, acked):
    """States after op; acked ops must apply to every state they keep."""
    out = set()
    for s in states:
        if op == "create":
            if s is None:
                out.add((v["partitions"], v["retention"]))
            elif not acked:
                out.add(s)
        elif op == "delete":
            if s is not None:
                out.add(None)
            elif not acked:
                out.add(s)
        elif op == "partitions":
            if s is not None and s[0] < v["partitions"]:
                out.add((v["partitions"], s[1]))
            elif not acked:
                out.add(s)
        elif op == "config":
            if s is not None:
                out.add((s[0], v["retention"]))
            elif not acked:
                out.add(s)
    if not acked:
        out |= set(states)
    return out


def build_model(entries):
    """name -> possible states, and anomalies (acknowledged operations that were impossible)."""
    states = {}
    anomalies = []
    pending = {}
    for e in entries:
        if e["f"] not in ("create", "delete", "partitions", "config"):
            continue
        if e["type"] == "invoke":
            pending[e["process"]] = e
            continue
        v = e["value"]
        name = v["topic"]
        cur = states.get(name, {None})
        nxt = _step(cur, e["f"], v, e["type"] == "ok")
        if not nxt:
            anomalies.append(f"{e['process']} {e['f']} {v} acknowledged at t={e['time']:.3f}s, "
                             f"impossible from every state the earlier operations allow: {sorted(map(str, cur))}")
            nxt = _step({None} if e["f"] == "create" else {(1, 0)}, e["f"], v, True) or cur
        if len(nxt) > 64:
            nxt = set(list(nxt)[:64])
        states[name] = nxt
    return states, anomalies


def compare(model, views):
    problems = []
    for nid, view in views.items():
        if view is None or "error" in view:
            problems.append(f"broker {nid} did not answer: {view}")
            continue
        for name, possible in model.items():
            seen = view.get(name)
            st = None if seen is None else (seen[0], seen[1])
            if st not in possible:
                problems.append(f"broker {nid} shows {name} as {st}; acknowledged operations allow only {sorted(map(str, possible))}")
    states = {nid: {k: (None if x is None else (x[0], x[1])) for k, x in v.items()}
              for nid, v in views.items() if v is not None and "error" not in v}
    if len({repr(sorted(s.items())) for s in states.values()}) > 1:
        problems.append(f"brokers disagree: {states}")
    return problems


def check(entries, limit=20):
    admin = [e for e in entries if e["process"].startswith("admin")]
    model, anomalies = build_model(admin)
    out = {}
    if anomalies:
        out["impossible-ack"] = anomalies
    views = {e["value"]["node"]: e["value"]["view"] for e in entries
             if e["f"] == "read" and e["process"].startswith("meta-reader")}
    if not views:
        out["no-final-read"] = ["the final metadata reads did not happen"]
    else:
        probs = compare(model, views)
        if probs:
            out["not-visible"] = probs
        for nid, view in views.items():
            if not view or "error" in view:
                continue
            for name, x in view.items():
                if x is None:
                    continue
                for p, (leader, isr) in x[2].items():
                    if leader < 0:
                        out.setdefault("no-leader-after-heal", []).append(f"broker {nid}: {name}-{p} has no leader")
                    elif leader not in isr:
                        out.setdefault("leader-not-in-isr", []).append(f"broker {nid}: {name}-{p} leader {leader} not in ISR {isr}")
    stats = {}
    for e in admin:
        if e["type"] != "invoke":
            k = f"{e['f']}"
            stats.setdefault(k, {"ok": 0, "fail": 0, "info": 0})[e["type"]] += 1
    return {"valid": not out, "stats": stats, "counts": {k: len(v) for k, v in out.items()},
            "anomalies": {k: v[:limit] for k, v in out.items()}}


def check_monitor(entries, limit=20):
    """Epochs only grow, leaders are in their ISR (every sample of the monitor)."""
    out = {}
    part_epoch = {}       # (node, topic id, partition) -> (epoch, time)
    quorum_epoch = {}     # node -> (epoch, time)
    for e in entries:
        if e["process"] != "monitor":
            continue
        v = e["value"]
        if e["f"] == "partitions":
            nid = v["node"]
            for key, (leader, epoch, isr) in v["changed"].items():
                k = (nid, key)
                if leader >= 0 and leader not in isr:
                    out.setdefault("leader-not-in-isr", []).append(
                        f"t={e['time']:.3f}s broker {nid}: {key} leader {leader} not in ISR {isr} (epoch {epoch})")
                prev = part_epoch.get(k)
                if prev is not None and epoch < prev[0]:
                    out.setdefault("leader-epoch-decreased", []).append(
                        f"t={e['time']:.3f}s broker {nid}: {key} leader epoch {prev[0]} (t={prev[1]:.3f}s) -> {epoch}")
                part_epoch[k] = (epoch, e["time"])
        elif e["f"] == "quorum":
            nid = v["node"]
            prev = quorum_epoch.get(nid)
            if prev is not None and v["epoch"] < prev[0]:
                out.setdefault("quorum-epoch-decreased", []).append(
                    f"t={e['time']:.3f}s controller {nid}: leader epoch {prev[0]} (t={prev[1]:.3f}s) -> {v['epoch']}")
            quorum_epoch[nid] = (v["epoch"], e["time"])
    return {"valid": not out, "stats": {"partition-epochs-tracked": len(part_epoch)},
            "counts": {k: len(v) for k, v in out.items()}, "anomalies": {k: v[:limit] for k, v in out.items()}}
