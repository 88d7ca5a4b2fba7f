"""The *metadata* workload and its checkers.

Admin clients (aiokafka's AIOKafkaAdminClient, each worker with its own topic names so operations
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
        self.graveyard = []

    def topics(self):
        return {}

    def setup(self):
        pass

    def start(self):
        for w in self.names:
            t = threading.Thread(target=self._run, args=(w,), name=f"admin{w}", daemon=True)
            t.start()
            self.threads.append(t)

    # aiokafka's admin client: librdkafka's (confluent-kafka 2.16.1) AdminClient aborted the
    # harness under faults (rdkafka_queue.h: rd_kafka_enq_once_del_source_return: Assertion
    # `eonce->refcnt > 0' failed) when requests timed out, so the admin work uses aiokafka.
    def _run(self, w):
        import asyncio
        asyncio.run(self._run_async(w))

    async def _admin(self):
        from aiokafka.admin import AIOKafkaAdminClient
        a = AIOKafkaAdminClient(bootstrap_servers=self.ctx.bootstrap, request_timeout_ms=10000,
                                client_id=f"fjf-admin-{id(self)}")
        await asyncio_wait(a.start(), 20)
        return a

    async def _run_async(self, w):
        import asyncio
        from aiokafka.admin import NewPartitions, NewTopic
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
        from aiokafka.errors import for_code
        rng = random.Random(self.seed * 1000 + w)
        proc = f"admin{w}"
        a = None
        while not self.stop_flag.is_set():
            if a is None:
                try:
                    a = await self._admin()
                except Exception as e:  # noqa: BLE001
                    self.h.add(proc, "info", "admin-start", {"error": repr(e)})
                    a = None
                    await asyncio.sleep(1)
                    continue
            name = rng.choice(self.names[w])
            op = rng.choices(["create", "delete", "partitions", "config"], [3, 2, 2, 3])[0]
            if op == "create":
                value = {"topic": name, "partitions": rng.randint(1, 3), "rf": rng.choice([2, 3]),
                         "retention": rng.randint(1, 10 ** 6) * 1000}
                call = a.create_topics([NewTopic(name, value["partitions"], value["rf"],
                                                 topic_configs={RETENTION: str(value["retention"])})], timeout_ms=10000)
            elif op == "delete":
                value = {"topic": name}
                call = a.delete_topics([name], timeout_ms=10000)
            elif op == "partitions":
                value = {"topic": name, "partitions": rng.randint(2, 6)}
                call = a.create_partitions({name: NewPartitions(value["partitions"])}, timeout_ms=10000)
            else:
                # AlterConfigs (not incremental) replaces the topic's dynamic configs: the model
                # tracks retention.ms only, which is the only one these topics ever get.
                value = {"topic": name, "retention": rng.randint(1, 10 ** 6) * 1000}
                call = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                                       configs={RETENTION: str(value["retention"])})])
            self.h.add(proc, "invoke", op, value)
            try:
                resp = await asyncio.wait_for(call, 15)
                code = error_code(resp)
                if code == 0:
                    self.h.add(proc, "ok", op, value)
                else:
                    ename = for_code(code).__name__
                    timeout_like = code in (7, 41)        # REQUEST_TIMED_OUT, NOT_CONTROLLER
                    self.h.add(proc, "info" if timeout_like else "fail", op, dict(value, error=ename))
            except Exception as e:  # noqa: BLE001 - timeouts, lost connections: outcome unknown
                from aiokafka.errors import BrokerResponseError
                if isinstance(e, BrokerResponseError) and e.errno not in (7, 41):
                    # aiokafka raises some error responses (e.g. UNKNOWN_TOPIC_OR_PARTITION)
                    self.h.add(proc, "fail", op, dict(value, error=type(e).__name__))
                    await asyncio.sleep(rng.uniform(0.2, 1.0))
                    continue
                self.h.add(proc, "info", op, dict(value, error=type(e).__name__))
                try:
                    await asyncio.wait_for(a.close(), 5)
                except Exception:  # noqa: BLE001
                    pass
                a = None
            await asyncio.sleep(rng.uniform(0.2, 1.0))
        if a is not None:
            try:
                await asyncio.wait_for(a.close(), 5)
            except Exception:  # noqa: BLE001
                pass

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


async def asyncio_wait(coro, seconds):
    import asyncio
    return await asyncio.wait_for(coro, seconds)


def error_code(resp):
    """The error code of an aiokafka admin response about one resource."""
    if isinstance(resp, list):
        resp = resp[0]
    for field, idx in (("topic_errors", 1), ("topic_error_codes", 1), ("resources", 0)):
        if hasattr(resp, field):
            return getattr(resp, field)[0][idx]
    raise ValueError(f"unknown response {resp!r}")


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


MAX_FLOATING = 6   # indeterminate operations kept floating per topic (older ones settle)
MAX_STATES = 512


def _closure(states):
    """Every (state, floating) pair reachable by applying floating operations in any order."""
    out = set(states)
    frontier = list(states)
    while frontier and len(out) < MAX_STATES:
        st, pend = frontier.pop()
        for i, (f, v) in enumerate(pend):
            for ns in _step({st}, f, dict(v), True):
                n = (ns, pend[:i] + pend[i + 1:])
                if n not in out:
                    out.add(n)
                    frontier.append(n)
    return out


def build_model(entries):
    """name -> possible states, and anomalies (acknowledged operations that were impossible).

    An operation that timed out (or was answered NOT_CONTROLLER/REQUEST_TIMED_OUT, i.e. its
    outcome is unknown) may take effect at any later moment, also after operations that were
    acknowledged after it: a controller that wrote it to the metadata log just before losing
    its quorum commits it once the quorum is back. Such operations float (up to MAX_FLOATING
    per topic, the oldest then settles as "applied then or never") until the final reads. An
    operation refused with a definite error may or may not have applied at its completion.
    """
    states = {}
    anomalies = []
    for e in entries:
        if e["f"] not in ("create", "delete", "partitions", "config"):
            continue
        if e["type"] == "invoke":
            continue
        v = e["value"]
        name = v["topic"]
        cur = states.get(name, {(None, ())})
        op = (e["f"], tuple(sorted((k, x) for k, x in v.items() if k in ("topic", "partitions", "retention"))))
        if e["type"] == "ok":
            reach = _closure(cur)
            nxt = {(ns, pend) for st, pend in reach for ns in _step({st}, e["f"], v, True)}
            if not nxt:
                possible = sorted({str(st) for st, _ in reach})
                anomalies.append(f"{e['process']} {e['f']} {v} acknowledged at t={e['time']:.3f}s, "
                                 f"impossible from every state the earlier operations allow: {possible}")
                nxt = {(ns, ()) for ns in _step({None} if e["f"] == "create" else {(1, 0)}, e["f"], v, True)} or cur
        elif e["type"] == "info":
            nxt = set()
            for st, pend in cur:
                pend = pend + (op,)
                while len(pend) > MAX_FLOATING:
                    (f0, v0), pend = pend[0], pend[1:]
                    for ns in _step({st}, f0, dict(v0), False):
                        nxt.add((ns, pend))
                    break
                else:
                    nxt.add((st, pend))
        else:
            nxt = {(ns, pend) for st, pend in cur for ns in _step({st}, e["f"], v, False)}
        if len(nxt) > MAX_STATES:
            nxt = set(list(nxt)[:MAX_STATES])
        states[name] = nxt
    return {name: {st for st, _ in _closure(S)} for name, S in states.items()}, anomalies


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
