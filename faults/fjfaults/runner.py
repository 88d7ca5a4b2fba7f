"""faults/run: a fault-injection run against real fjord processes (issue #9).

    faults/run --seed 7 --time-limit 120 --topology combined --workload queue,metadata,groups
    faults/run --seed 7 --time-limit 60 --inject-bug ack-before-replication --expect-violation \\
               --nemesis kill,partition-leader --workload queue
    faults/run --cleanup          # remove what a killed run left (processes, mounts, namespaces)
    faults/run --recheck DIR      # run the checkers again on DIR/history.jsonl

--time-limit is the length of the fault phase; set-up, the final heal and the final reads come
on top (a watchdog ends the whole run at time-limit + --grace seconds, cleaning up).
Exit status: 0 valid (or, with --expect-violation, the checker found the lost writes),
1 a checker violation, 2 the harness failed (e.g. the cluster never started), 3 watchdog.
"""
import argparse
import json
import logging
import os
import random
import shutil
import signal
import sys
import threading
import time
import traceback

from . import groups as groups_mod
from . import kproto
from . import metadata as metadata_mod
from . import queue as queue_mod
from . import report
from .cluster import Cluster, cleanup_stale
from .history import History, load
from .nemesis import ALL_KINDS, NETWORK_KINDS, PROBE_TOPIC, Nemesis
from .net import Net, netns_supported, stale_cleanup

LOCK_PATH = "/tmp/fjord-faults.lock"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="faults/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=None, help="schedule seed (default: random, printed)")
    ap.add_argument("--time-limit", type=float, default=120, help="seconds of faults (default 120)")
    ap.add_argument("--grace", type=float, default=300, help="extra seconds the watchdog allows for set-up and final checks")
    ap.add_argument("--topology", choices=["combined", "split"], default="combined")
    ap.add_argument("--workload", default="queue,metadata,groups", help="comma-separated: queue, metadata, groups")
    ap.add_argument("--nemesis", default="all", help="'all', 'none' or comma-separated kinds: " + ", ".join(ALL_KINDS))
    ap.add_argument("--max-faults", type=int, default=None, help="stop after this many faults")
    ap.add_argument("--fjord", default=None, help="fjord executable (default $FJORD_BIN, else .build/debug/fjord)")
    ap.add_argument("--inject-bug", choices=["ack-before-replication"], default=None,
                    help="start fjord with FJORD_INJECT_BUG set (a deliberate durability bug)")
    ap.add_argument("--expect-violation", action="store_true",
                    help="succeed only if the queue checker reports lost acknowledged writes")
    ap.add_argument("--known-open", default="",
                    help="comma-separated violations ('workload: kind', e.g. 'queue: duplicate') that are known, "
                         "documented open bugs (docs/FAULTS.md): still reported, as KNOWN OPEN, but they alone do not "
                         "fail the run; every other violation does")
    ap.add_argument("--rate", type=float, default=60, help="records/s per queue producer (3 producers)")
    ap.add_argument("--heal-timeout", type=float, default=45, help="seconds to wait for a healthy cluster after a fault")
    ap.add_argument("--final-heal-timeout", type=float, default=90,
                    help="seconds to wait for a healthy cluster once the fault phase is over")
    ap.add_argument("--partition-duration", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                    help="seconds a network partition lasts (default 2 .. broker.session.timeout.ms + 6 s)")
    ap.add_argument("--settle", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                    help="seconds of quiet after the cluster is healthy again (default 1 3)")
    ap.add_argument("--override", action="append", default=[], metavar="K=V", help="a server property for every node")
    ap.add_argument("--dir", default=None, help="run directory (default /tmp/fjord-faults-<seed>-<topology>-<pid>)")
    ap.add_argument("--keep", action="store_true", help="keep the run directory's node data after a valid run")
    ap.add_argument("--subnet", default=None, help="the private /24 (first three octets) for the bridge (default 10.213.<slot>)")
    ap.add_argument("--slot", type=int, default=0, choices=range(0, 10),
                    help="run beside another run: slot N uses bridge fjfbrN, namespaces fjfN-n*, subnet 10.213.N")
    ap.add_argument("--no-netns", action="store_true", help="run every node on loopback (no network faults)")
    ap.add_argument("--tmpfs-mb", type=int, default=1024, help="size of each broker's data tmpfs")
    ap.add_argument("--cleanup", action="store_true", help="remove leftovers of killed runs and exit")
    ap.add_argument("--lock-wait", type=float, default=900, help="seconds to wait for another run on this machine to end")
    ap.add_argument("--recheck", metavar="DIR", help="run the checkers on DIR/history.jsonl and exit")
    ap.add_argument("--dry-run", type=int, metavar="N", help="print the first N planned faults and exit")
    return ap.parse_args(argv)


class Ctx:
    """What workloads and the nemesis share."""

    def __init__(self, args, run_dir):
        self.args = args
        self.run_dir = run_dir
        self.history = None
        self.cluster = None
        self.net = None
        self.stop_event = threading.Event()
        self.flush_timeout = 30
        self.workloads = []
        self.probe_partitions = 3
        self.client_logger = None
        self.out_lock = threading.Lock()

    @property
    def bootstrap(self):
        return self.cluster.bootstrap

    def say(self, msg):
        t = self.history.now() if self.history else 0.0
        with self.out_lock:
            print(f"[{t:8.2f}] {msg}", flush=True)

    def history_entries(self):
        self.history.flush()
        return list(load(self.history.path))

    def watched_topics(self):
        t = {}
        for w in self.workloads:
            t.update(w.topics())
        return t

    def create_topic(self, name, partitions, rf, config, timeout=90):
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic
        deadline = time.monotonic() + timeout
        keep = []      # clients with a request that may still be pending are not destroyed
        while True:
            a = AdminClient({"bootstrap.servers": self.bootstrap, "logger": self.client_logger})
            keep.append(a)
            try:
                a.create_topics([NewTopic(name, partitions, rf, config=config)], request_timeout=10)[name].result(15)
                break
            except Exception as e:  # noqa: BLE001 - KafkaException, futures' TimeoutError
                if isinstance(e, KafkaException) and "TOPIC_ALREADY_EXISTS" in str(e):
                    break
                self.say(f"creating topic {name}: {e}; retrying")
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self._keep_clients = getattr(self, "_keep_clients", []) + keep
        self.wait_topic(name, partitions, timeout)

    def wait_topic(self, name, partitions, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = True
            for n in self.cluster.brokers:
                try:
                    t = kproto.metadata(n.broker_addr)["topics"].get(name)
                except Exception:  # noqa: BLE001
                    ok = False
                    break
                if not t or len(t["partitions"]) != partitions or any(x["leader"] < 0 for x in t["partitions"].values()):
                    ok = False
                    break
            if ok:
                return
            time.sleep(0.3)
        raise RuntimeError(f"topic {name} has no leaders on every broker after {timeout} s")

    def end_offsets(self, topic, partitions, timeout=60):
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "fjf-ends", "logger": self.client_logger})
        deadline = time.monotonic() + timeout
        out = {}
        try:
            for p in range(partitions):
                while True:
                    try:
                        out[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                        break
                    except Exception:  # noqa: BLE001
                        if time.monotonic() > deadline:
                            return None
                        time.sleep(1)
        finally:
            c.close()
        return out


class Monitor(threading.Thread):
    """Once a second: crashed processes; each broker's partition view (leader, epoch, ISR,
    recorded when it changes) and each controller's quorum leader and epoch."""

    def __init__(self, ctx):
        super().__init__(name="monitor", daemon=True)
        self.ctx = ctx
        self.last = {}
        self.last_q = {}
        self.stop = threading.Event()

    def run(self):
        c = self.ctx.cluster
        h = self.ctx.history
        while not self.stop.wait(1.0):
            h.flush()     # a history that survives the harness's own death
            try:
                c.check_crashes()
                for n in c.brokers:
                    if n.state != "up":
                        continue
                    try:
                        md = kproto.metadata(n.broker_addr, timeout=1.0)
                    except Exception:  # noqa: BLE001
                        continue
                    cur = {}
                    for name, t in md["topics"].items():
                        for p, x in t["partitions"].items():
                            cur[f"{name}/{t['id']}/{p}"] = [x["leader"], x["epoch"], x["isr"]]
                    prev = self.last.get(n.id, {})
                    changed = {k: v for k, v in cur.items() if prev.get(k) != v}
                    if changed:
                        h.add("monitor", "info", "partitions", {"node": n.id, "changed": changed})
                    self.last[n.id] = cur
                for n in c.controllers:
                    if n.state != "up":
                        continue
                    try:
                        q = kproto.describe_quorum(n.controller_addr, timeout=1.0)
                    except Exception:  # noqa: BLE001
                        continue
                    if "epoch" in q:
                        key = (q["leader"], q["epoch"])
                        if self.last_q.get(n.id) != key:
                            h.add("monitor", "info", "quorum", {"node": n.id, "leader": q["leader"], "epoch": q["epoch"]})
                            self.last_q[n.id] = key
            except Exception as e:  # noqa: BLE001
                h.add("monitor", "info", "error", {"error": repr(e)})


def check_all(entries, workloads):
    results = {}
    if "queue" in workloads:
        results["queue"] = queue_mod.check(entries)
    if "metadata" in workloads:
        results["metadata"] = metadata_mod.check(entries)
    if "groups" in workloads:
        results["groups"] = groups_mod.check(entries)
    results["epochs+isr (monitor)"] = metadata_mod.check_monitor(entries)
    # The harness's own findings: crashes, partitions without leader after healing.
    harness = {}
    for e in entries:
        if e["process"] == "harness" and e["f"] in ("crash", "no-leader-after-heal", "not-healed", "stopped-on-full-disk"):
            harness.setdefault(e["f"], []).append(e["value"])
    hv = {k: v for k, v in harness.items() if k != "stopped-on-full-disk"}
    results["harness"] = {"valid": not hv, "counts": {k: len(v) for k, v in harness.items()},
                          "anomalies": {k: v[:10] for k, v in harness.items()}, "stats": {}}
    return results


class Run:
    def __init__(self, args):
        self.args = args
        self.seed = args.seed if args.seed is not None else random.randrange(1, 10 ** 6)
        self.workloads = [w.strip() for w in args.workload.split(",") if w.strip()]
        for w in self.workloads:
            if w not in ("queue", "metadata", "groups"):
                sys.exit(f"unknown workload {w}")
        self.run_dir = args.dir or f"/tmp/fjord-faults-{self.seed}-{args.topology}-{os.getpid()}"
        self.ctx = Ctx(args, self.run_dir)
        self.cleaned = False
        self.clean_lock = threading.Lock()
        self.exit_code = 2

    def kinds(self, have_netns, have_nft):
        a = self.args.nemesis
        if a == "none":
            return []
        kinds = ALL_KINDS if a == "all" else [k.strip() for k in a.split(",") if k.strip()]
        for k in kinds:
            if k not in ALL_KINDS:
                sys.exit(f"unknown nemesis {k}; known: {', '.join(ALL_KINDS)}")
        out = []
        for k in kinds:
            if k in NETWORK_KINDS and not have_netns:
                continue
            if k == "packet-loss" and not have_nft:
                print("notice: nft is not installed: packet-loss is skipped (scripts/setup installs nftables)")
                continue
            out.append(k)
        return out

    def cleanup(self):
        with self.clean_lock:
            if self.cleaned:
                return
            self.cleaned = True
        ctx = self.ctx
        ctx.stop_event.set()
        try:
            if ctx.cluster is not None:
                ctx.cluster.stop_all()
                if self.exit_code != 0 or self.args.keep:
                    # The data lives on tmpfs: keep a copy for the post-mortem (fjord dump-log).
                    for n in ctx.cluster.brokers:
                        if n.data_dir and os.path.isdir(n.data_dir):
                            shutil.copytree(n.data_dir, os.path.join(n.dir, "data.saved"), dirs_exist_ok=True,
                                            ignore=shutil.ignore_patterns("*.index", "*.timeindex"))
                for n in ctx.cluster.nodes.values():
                    if n.mount_dir and os.path.exists(os.path.join(n.mount_dir, "fjf-filler")):
                        try:
                            os.unlink(os.path.join(n.mount_dir, "fjf-filler"))
                        except OSError:
                            pass
                ctx.cluster.unmount_all()
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        try:
            if ctx.net is not None:
                ctx.net.teardown()
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        if ctx.history is not None:
            ctx.history.close()

    def take_lock(self):
        """One run at a time on a machine: they share the bridge name, the namespace names and
        the subnet, and a run removes the leftovers of dead ones."""
        import fcntl
        self.lock_path = LOCK_PATH if self.args.slot == 0 else LOCK_PATH.replace(".lock", f"-slot{self.args.slot}.lock")
        self.lock_file = open(self.lock_path, "a+")
        deadline = time.monotonic() + self.args.lock_wait
        said = False
        while True:
            try:
                fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another faults run holds {self.lock_path}; gave up after {self.args.lock_wait:.0f} s")
                if not said:
                    print(f"another faults run holds {self.lock_path}; waiting (up to {self.args.lock_wait:.0f} s)", flush=True)
                    said = True
                time.sleep(2)
        self.lock_file.seek(0)
        self.lock_file.truncate()
        self.lock_file.write(f"{os.getpid()} {self.run_dir}\n")
        self.lock_file.flush()

    def watchdog(self, limit):
        def fire():
            if self.ctx.stop_event.wait(limit):
                return
            print(f"watchdog: the run exceeded {limit:.0f} s; cleaning up and exiting", flush=True)
            if self.ctx.history is not None:
                try:
                    self.ctx.history.add("harness", "info", "watchdog", {"limit": limit})
                except Exception:  # noqa: BLE001
                    pass
            self.cleanup()
            os._exit(3)
        threading.Thread(target=fire, name="watchdog", daemon=True).start()

    def main(self):
        a = self.args
        ctx = self.ctx
        fjord = a.fjord or os.environ.get("FJORD_BIN") or os.path.join(REPO, ".build/debug/fjord")
        if not os.access(fjord, os.X_OK):
            print(f"no fjord executable at {fjord} (build it, or pass --fjord / FJORD_BIN)")
            return 2
        fjord = os.path.realpath(fjord)
        if os.path.exists(self.run_dir):
            shutil.rmtree(self.run_dir)
        os.makedirs(self.run_dir)
        # A private copy: a concurrent `swift build` may replace the original mid-run, and a
        # crash's backtrace needs the very binary that crashed.
        shutil.copy2(fjord, os.path.join(self.run_dir, "fjord"))
        self.fjord_source = fjord
        fjord = os.path.join(self.run_dir, "fjord")
        logging.basicConfig(filename=os.path.join(self.run_dir, "clients.log"), level=logging.WARNING,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
        ctx.client_logger = logging.getLogger("librdkafka")
        if os.environ.get("FJF_RDKAFKA_DEBUG"):
            ctx.client_logger.setLevel(logging.DEBUG)
        ctx.history = History(os.path.join(self.run_dir, "history.jsonl"))
        self.take_lock()
        self.watchdog(a.time_limit + a.grace)
        # Every wait after the fault phase is cut to what is left before the watchdog, so a
        # stuck cluster still ends with checkers and a verdict.
        self.hard_deadline = time.monotonic() + a.time_limit + a.grace - 5
        cleanup_stale(log=print)

        have_netns = False
        if not a.no_netns:
            ok, why = netns_supported()
            if ok:
                stale_cleanup(log=print, slot=a.slot)
                have_netns = True
            else:
                print(f"NOTICE: network namespaces are unavailable ({why}); nodes run on loopback and the "
                      "network faults (partitions, slow-net, packet-loss) are SKIPPED")
        if have_netns:
            ctx.net = Net([1, 2, 3] if a.topology == "combined" else [1, 2, 3, 4, 5, 6],
                          subnet=a.subnet or f"10.213.{a.slot}", slot=a.slot)
            ctx.net.setup()
        kinds = self.kinds(have_netns, ctx.net.have_nft if ctx.net else False)
        env = {"FJORD_INJECT_BUG": a.inject_bug} if a.inject_bug else {}
        ctx.cluster = Cluster(fjord, self.run_dir, a.topology, net=ctx.net, overrides=a.override,
                              tmpfs_mb=a.tmpfs_mb, env_extra=env, log=print)
        cl = ctx.cluster
        if not a.inject_bug:
            cl.env.pop("FJORD_INJECT_BUG", None)   # never inherited by accident

        def on_crash(n, rc, tail):
            filled = n.mount_dir and os.path.exists(os.path.join(n.mount_dir, "fjf-filler"))
            kind = "stopped-on-full-disk" if filled and rc is not None and rc > 0 else "crash"
            ctx.history.add("harness", "info", kind, {"node": n.id, "returncode": rc, "disk_full": bool(filled),
                                                       "log_tail": tail.splitlines()[-15:]})
            ctx.say(f"{'!!' if kind == 'crash' else '!'} node {n.id} exited (status {rc}){' while its disk was full' if filled else ''}")
        cl.on_crash = on_crash

        ctx.say(f"fjord faults: seed {self.seed}, topology {a.topology}, workloads {','.join(self.workloads)}, "
                f"faults {','.join(kinds) or 'none'}, time limit {a.time_limit:.0f} s, dir {self.run_dir}"
                + (f", INJECTED BUG {a.inject_bug}" if a.inject_bug else ""))
        ctx.history.add("harness", "info", "config", {"seed": self.seed, "topology": a.topology, "workloads": self.workloads,
                                                      "nemesis": kinds, "time_limit": a.time_limit, "fjord": self.fjord_source,
                                                      "inject_bug": a.inject_bug, "argv": sys.argv[1:]})
        cl.setup()
        cl.start_all()
        ctx.say(f"cluster up: brokers {cl.bootstrap}, controllers {','.join(n.controller_addr for n in cl.controllers)}")

        wl = []
        if "queue" in self.workloads:
            wl.append(queue_mod.QueueWorkload(ctx, rate=a.rate))
        if "metadata" in self.workloads:
            wl.append(metadata_mod.MetadataWorkload(ctx, seed=self.seed))
        if "groups" in self.workloads:
            wl.append(groups_mod.GroupsWorkload(ctx))
        ctx.workloads = wl
        for w in wl:
            t0 = time.monotonic()
            w.setup()
            if w.topics():
                ctx.say(f"{w.name}: topics {', '.join(w.topics())} ready in {time.monotonic() - t0:.1f} s")
        if "disk-full" in kinds:
            ctx.create_topic(PROBE_TOPIC, ctx.probe_partitions, 3, {"min.insync.replicas": "2"})
        monitor = Monitor(ctx)
        monitor.start()
        for w in wl:
            w.start()
        ctx.say("workloads started")

        nem = Nemesis(ctx, kinds, self.seed, partition_duration=a.partition_duration)
        t_start = ctx.history.now()
        phase_end = t_start + a.time_limit
        nem.deadline = time.monotonic() + a.time_limit
        settle_rng = random.Random(self.seed + 1)
        faults = []
        time.sleep(min(3.0, a.time_limit / 10))
        while kinds and ctx.history.now() < phase_end - 5 and (a.max_faults is None or len(faults) < a.max_faults) \
                and self.remaining() - (a.final_heal_timeout + 20) > 5:
            plan = nem.plan()
            rec = nem.run(plan)
            if rec is None:
                time.sleep(1)
                continue
            faults.append(rec)
            # The final heal (up to --final-heal-timeout) and the reads (~20 s) must fit before
            # the watchdog: a heal wait that would not fit is cut, and a cut wait that ends
            # unhealthy is no finding (the final heal decides).
            allowed = self.remaining() - (a.final_heal_timeout + 20)
            if ctx.history.now() >= phase_end - 1 or allowed < 1:
                ctx.say(f"fault {rec['id']:4d} {rec['kind']:<18} node={rec.get('node', '-')} (the last: healed by the final heal)")
                break                      # the final heal below is this fault's heal
            cut = allowed < a.heal_timeout
            healthy, took, problems = self.wait_healthy(min(a.heal_timeout, allowed), reserve=0)
            if cut and not healthy:
                ctx.say(f"fault {rec['id']:4d} {rec['kind']:<18} node={rec.get('node', '-')} (not healthy within the {allowed:.0f} s "
                        "left; the final heal decides)")
                break
            ctx.history.add("nemesis", "info", "healed", {"id": rec["id"], "healthy": healthy, "after": round(took, 3),
                                                          "problems": problems[:10]})
            extra = ""
            if "tear" in rec:
                t = rec["tear"]
                extra = f" tear={t.get('mode')}" + (f" removed {t['removed']} B" if "removed" in t else
                                                     f" appended {t.get('appended')} B" if "appended" in t else "")
            if "probe" in rec:
                extra = f" probe={rec['probe']}"
            if "desc" in rec:
                extra = f" {rec['desc']}"
            ctx.say(f"fault {rec['id']:4d} {rec['kind']:<18} node={rec.get('node', '-')}{extra} "
                    f"-> {'healthy' if healthy else 'NOT healthy'} after {took:.1f} s"
                    + ("" if healthy else f": {'; '.join(problems[:3])}"))
            if not healthy:
                self.record_unhealthy(problems, rec["id"])
            if ctx.stop_event.is_set():
                break
            time.sleep(settle_rng.uniform(*a.settle))
        if not kinds:
            ctx.stop_event.wait(max(0.0, phase_end - ctx.history.now()))
        fault_phase_end = ctx.history.now()
        ctx.history.add("harness", "info", "faults-over", {"count": len(faults)})
        ctx.say(f"fault phase over: {len(faults)} faults; final heal")
        nem.heal_all()
        healthy, took, problems = self.wait_healthy(a.final_heal_timeout, reserve=20)
        ctx.history.add("harness", "info", "final-heal", {"healthy": healthy, "after": round(took, 3), "problems": problems[:20]})
        if not healthy:
            ctx.say(f"NOT healthy after the final heal: {'; '.join(problems[:5])}")
            self.record_unhealthy(problems, "final")
        workload_end = ctx.history.now()
        ctx.flush_timeout = max(5.0, min(30.0, self.remaining() / 6))
        for w in wl:
            w.stop()
        ctx.say("workloads stopped; final reads")
        for w in wl:
            try:
                # At least 180 s, more for a long run's records (four queue readers, the
                # slowest at about 8k records/s); never past the watchdog (--grace).
                cap = max(180.0, getattr(w, "counts", {}).get("sent", 0) / 1000.0)
                w.final_read(deadline_s=max(10.0, min(cap, self.remaining() - 15)) / (2 if w.name == "queue" else 4))
            except Exception as e:  # noqa: BLE001
                ctx.history.add("harness", "info", "final-read-error", {"workload": w.name, "error": repr(e)})
                ctx.say(f"{w.name}: final read failed: {e!r}")
        monitor.stop.set()
        monitor.join(5)
        cl.check_crashes()
        # The hook is read on the first produce: prove it was active.
        if a.inject_bug:
            hits = [n.id for n in cl.brokers if "FJORD_INJECT_BUG" in open(n.log, errors="replace").read()]
            ctx.say(f"injected bug active on brokers {hits}")

        entries = ctx.history_entries()
        return self.finish(entries, faults, workload_end)

    def remaining(self):
        return self.hard_deadline - time.monotonic()

    def record_unhealthy(self, problems, fault_id):
        """A cluster that does not heal within --heal-timeout once every fault is removed is a
        finding (liveness): recorded with each controller's view of the quorum (leader, epoch,
        every replica's log end offset) and each broker's view of the workload partitions."""
        ctx, cl = self.ctx, self.ctx.cluster
        diag = {"quorum": {}, "partitions": {}}
        for n in cl.controllers:
            try:
                diag["quorum"][n.id] = kproto.describe_quorum(n.controller_addr, timeout=2)
            except Exception as e:  # noqa: BLE001
                diag["quorum"][n.id] = repr(e)
        for n in cl.brokers:
            try:
                md = kproto.metadata(n.broker_addr, timeout=2)
                diag["partitions"][n.id] = {f"{t}-{p}": [x["leader"], x["epoch"], x["isr"]]
                                            for t in ctx.watched_topics() if t in md["topics"]
                                            for p, x in md["topics"][t]["partitions"].items()}
            except Exception as e:  # noqa: BLE001
                diag["partitions"][n.id] = repr(e)
        kind = "no-leader-after-heal" if any("no leader" in p for p in problems) else "not-healed"
        ctx.history.add("harness", "info", kind, {"fault": fault_id, "problems": problems[:10], "diagnostics": diag})

    def wait_healthy(self, timeout, reserve=60):
        """Restarts stopped nodes and waits until: every controller agrees on a quorum leader,
        every broker answers and lists every broker, and every partition of the workload
        topics has a leader in a full ISR. Returns (healthy, seconds, problems)."""
        ctx, cl = self.ctx, self.ctx.cluster
        t0 = time.monotonic()
        timeout = max(3.0, min(timeout, self.remaining() - reserve))
        problems = []
        while True:
            cl.check_crashes()
            for n in cl.nodes.values():
                if n.state in ("down", "crashed"):
                    cl.start(n)
                    ctx.history.add("harness", "info", "restart", {"node": n.id})
            problems = []
            leaders = set()
            for n in cl.controllers:
                try:
                    q = kproto.describe_quorum(n.controller_addr, timeout=2)
                    leaders.add((q.get("leader"), q.get("epoch")))
                    if q.get("leader", -1) < 0:
                        problems.append(f"controller {n.id}: no quorum leader")
                except Exception as e:  # noqa: BLE001
                    problems.append(f"controller {n.id} does not answer DescribeQuorum ({type(e).__name__})")
            if len(leaders) > 1:
                problems.append(f"controllers disagree on the quorum leader: {sorted(leaders, key=str)}")
            topics = ctx.watched_topics()
            for n in cl.brokers:
                try:
                    md = kproto.metadata(n.broker_addr, timeout=2)
                except Exception as e:  # noqa: BLE001
                    problems.append(f"broker {n.id} does not answer Metadata ({type(e).__name__})")
                    continue
                missing = {b.id for b in cl.brokers} - set(md["brokers"])
                if missing:
                    problems.append(f"broker {n.id} does not list brokers {sorted(missing)}")
                for name in topics:
                    t = md["topics"].get(name)
                    if not t:
                        problems.append(f"broker {n.id} does not know topic {name}")
                        continue
                    for p, x in sorted(t["partitions"].items()):
                        if x["leader"] < 0:
                            problems.append(f"broker {n.id}: {name}-{p} has no leader")
                        elif x["leader"] not in x["isr"]:
                            problems.append(f"broker {n.id}: {name}-{p} leader {x['leader']} not in ISR {x['isr']}")
                        elif sorted(x["isr"]) != sorted(x["replicas"]):
                            problems.append(f"broker {n.id}: {name}-{p} ISR {x['isr']} of replicas {x['replicas']}")
            took = time.monotonic() - t0
            if not problems:
                return True, took, []
            if took > timeout or ctx.stop_event.is_set():
                return False, took, problems
            time.sleep(0.25)

    def finish(self, entries, faults, fault_phase_end):
        a, ctx = self.args, self.ctx
        results = check_all(entries, self.workloads)
        frs = report.fault_records(entries)
        gaps = report.availability_gaps(entries, frs, fault_phase_end) if "queue" in self.workloads else []
        ops = report.op_counts(entries)
        table = report.summary(results, frs, gaps, ctx.cluster.session_timeout_ms / 1000.0, ops)
        violations = {f"{name}: {k}": v for name, r in results.items() for k, v in r["counts"].items()
                      if not r["valid"] and not (name == "harness" and k == "stopped-on-full-disk")}
        lost = results.get("queue", {}).get("counts", {}).get("lost", 0)
        desc = (f"seed {self.seed}, {a.topology}, {'+'.join(self.workloads)}, {len(frs)} faults, "
                f"{sum(c.get('ok', 0) for _, c in ops)} ok ops")
        if a.expect_violation:
            if lost > 0:
                verdict = f"VERDICT: PASS (expected violation found: {lost} acknowledged writes lost; {desc})"
                self.exit_code = 0
            else:
                verdict = f"VERDICT: FAIL (expected lost acknowledged writes, the checker found none; {desc})"
                self.exit_code = 1
        elif violations and set(violations) <= {k.strip() for k in a.known_open.split(",") if k.strip()}:
            verdict = ("VERDICT: PASS with KNOWN OPEN violations (" + ", ".join(f"{k} {v}" for k, v in sorted(violations.items()))
                       + f"; open bugs listed in docs/FAULTS.md, not fixed yet; {desc})")
            self.exit_code = 0
        elif violations:
            verdict = "VERDICT: FAIL (" + ", ".join(f"{k} {v}" for k, v in sorted(violations.items())) + f"; {desc})"
            self.exit_code = 1
        else:
            verdict = f"VERDICT: PASS (no violations; {desc})"
            self.exit_code = 0
        details = []
        for name, r in results.items():
            for k, items in r["anomalies"].items():
                details.append(f"{name} / {k} ({r['counts'][k]}):")
                details += [f"    {x if isinstance(x, str) else json.dumps(x)}" for x in items[:10]]
            if r.get("notes"):
                details.append(f"{name} / notes (not violations):")
                details += [f"    {x}" for x in r["notes"][:10]]
        worst = sorted(gaps, key=lambda g: -g["gap"])[:5]
        text = (f"fjord fault-injection run: {' '.join(['faults/run'] + sys.argv[1:])}\n"
                f"seed {self.seed}, topology {a.topology}, history {ctx.history.path}\n\n{table}\n\n"
                + (("longest gaps: " + ", ".join(f"fault {g['id']} {g['kind']} {g['gap']:.2f} s (partition {g['partition']})"
                                                 for g in worst) + "\n\n") if worst else "")
                + ("\n".join(details) + "\n\n" if details else "") + verdict + "\n")
        with open(os.path.join(self.run_dir, "summary.txt"), "w") as f:
            f.write(text)
        with open(os.path.join(self.run_dir, "results.json"), "w") as f:
            json.dump({"seed": self.seed, "results": results, "gaps": gaps, "verdict": verdict}, f, indent=1)
        print()
        print(text, flush=True)
        return self.exit_code


def recheck(args):
    d = args.recheck
    entries = list(load(os.path.join(d, "history.jsonl")))
    cfg = next((e["value"] for e in entries if e["f"] == "config"), {})
    workloads = cfg.get("workloads", ["queue", "metadata", "groups"])
    results = check_all(entries, workloads)
    frs = report.fault_records(entries)
    end = next((e["time"] for e in entries if e["f"] == "final-heal"), entries[-1]["time"])
    gaps = report.availability_gaps(entries, frs, end) if "queue" in workloads else []
    print(report.summary(results, frs, gaps, 9.0, report.op_counts(entries)))
    bad = [n for n, r in results.items() if not r["valid"]]
    for name in bad:
        for k, items in results[name]["anomalies"].items():
            print(f"{name} / {k}:")
            for x in items[:10]:
                print(f"    {x}")
    for name, r in results.items():
        for x in r.get("notes", [])[:10]:
            print(f"{name} / note: {x}")
    violations = {f"{name}: {k}" for name in bad for k, v in results[name]["counts"].items() if v}
    known = {k.strip() for k in args.known_open.split(",") if k.strip()}
    if violations and violations <= known:
        print("KNOWN OPEN violations only: " + ", ".join(sorted(violations)))
        return 0
    return 1 if bad else 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.cleanup:
        import fcntl
        lock_path = LOCK_PATH if args.slot == 0 else LOCK_PATH.replace(".lock", f"-slot{args.slot}.lock")
        with open(lock_path, "a+") as lf:
            try:
                fcntl.flock(lf, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lf.seek(0)
                print(f"a faults run is active ({lf.read().strip()}); not cleaning up under it")
                return 2
            cleanup_stale(log=print)
            stale_cleanup(log=print, slot=args.slot)
        return 0
    if args.recheck:
        return recheck(args)
    if args.dry_run:
        seed = args.seed if args.seed is not None else 1
        kinds = ALL_KINDS if args.nemesis == "all" else [k for k in args.nemesis.split(",") if k]

        class _C:
            session_timeout_ms = 9000
        ctx = type("X", (), {"cluster": _C(), "net": None, "history": None, "stop_event": threading.Event()})()
        nem = Nemesis(ctx, kinds, seed)
        for i in range(args.dry_run):
            print(json.dumps(nem.plan()))
        return 0
    if os.geteuid() != 0 and not args.no_netns:
        print("NOTICE: not root: network namespaces and tmpfs mounts need root; running on loopback without "
              "network faults or disk-full")
        args.no_netns = True
    run = Run(args)

    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    code = 2
    try:
        code = run.main()
    except KeyboardInterrupt as e:
        print(f"interrupted ({e}); cleaning up", flush=True)
        code = 130
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("VERDICT: ERROR (the harness failed; see above)", flush=True)
        code = 2
    finally:
        run.cleanup()
        if code == 0 and not args.keep:
            # Keep the history, summary and node logs; drop the bulky metadata logs.
            try:
                os.unlink(os.path.join(run.run_dir, "fjord"))
            except OSError:
                pass
            for n in (run.ctx.cluster.nodes.values() if run.ctx.cluster else []):
                shutil.rmtree(n.meta_dir, ignore_errors=True)
                shutil.rmtree(n.mount_dir or "/nonexistent", ignore_errors=True)
    sys.stdout.flush()
    os._exit(code)
