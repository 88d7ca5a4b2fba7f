"""The cluster under test: real ``fjord`` processes, formatted and started as an operator would
(``fjord storage format -t <id> -c <props>``, ``fjord server-start <props>``), each in its own
network namespace when available. Data directories (``log.dirs``) are small tmpfs mounts so the
disk-full fault can fill them; the metadata log (``metadata.log.dir``) and the node's output
stay on the ordinary disk under the run directory.

Every process, mount and namespace is recorded in ``<run dir>/state.json`` so that
``faults/run --cleanup`` can remove what a killed run left behind.
"""
import json
import os
import signal
import socket
import subprocess
import threading
import time

BROKER_PORT = 9092
CONTROLLER_PORT = 9093


class Node:
    def __init__(self, id, roles, ip, broker_port, controller_port, dir):
        self.id = id
        self.roles = roles
        self.ip = ip
        self.broker_port = broker_port if "broker" in roles else None
        self.controller_port = controller_port if "controller" in roles else None
        self.dir = dir
        self.props = f"{dir}/server.properties"
        self.log = f"{dir}/server.log"
        self.meta_dir = f"{dir}/meta"
        # log.dirs lives one level below a tmpfs mount point, so the disk-full fault can put its
        # filler file next to (not inside) the log directory.
        self.mount_dir = f"{dir}/tmpfs" if "broker" in roles else None
        self.data_dir = f"{dir}/tmpfs/data" if "broker" in roles else None
        self.proc = None
        self.state = "new"          # new | up | paused | down | crashed
        self.starts = 0

    @property
    def is_broker(self):
        return "broker" in self.roles

    @property
    def is_controller(self):
        return "controller" in self.roles

    @property
    def broker_addr(self):
        return f"{self.ip}:{self.broker_port}" if self.is_broker else None

    @property
    def controller_addr(self):
        return f"{self.ip}:{self.controller_port}" if self.is_controller else None

    def __repr__(self):
        return f"n{self.id}"


def port_open(host, port, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Cluster:
    def __init__(self, fjord, run_dir, topology, net=None, overrides=(), tmpfs_mb=1024, env_extra=None, log=print):
        self.fjord = fjord
        self.run_dir = run_dir
        self.topology = topology
        self.net = net
        self.log = log
        self.overrides = list(overrides)
        self.tmpfs_mb = tmpfs_mb
        self.env = dict(os.environ)
        self.env.update(env_extra or {})
        self.mounts = []
        self.lock = threading.RLock()
        self.crashes = []            # (time, node id, returncode, log tail)
        self.on_crash = None         # callback(node, rc, tail)
        if topology == "combined":
            layout = [(i, ["broker", "controller"]) for i in (1, 2, 3)]
        elif topology == "split":
            layout = [(i, ["controller"]) for i in (1, 2, 3)] + [(i, ["broker"]) for i in (4, 5, 6)]
        else:
            raise ValueError(topology)
        self.nodes = {}
        for i, roles in layout:
            if net is not None:
                ip, bp, cp = net.ip(i), BROKER_PORT, CONTROLLER_PORT
            else:
                ip, bp, cp = "127.0.0.1", free_port(), free_port()
            self.nodes[i] = Node(i, roles, ip, bp, cp, f"{run_dir}/node{i}")
        self.session_timeout_ms = 9000
        for o in self.overrides:
            k, _, v = o.partition("=")
            if k == "broker.session.timeout.ms":
                self.session_timeout_ms = int(v)

    # ---- views -------------------------------------------------------------------------------

    @property
    def brokers(self):
        return [n for n in self.nodes.values() if n.is_broker]

    @property
    def controllers(self):
        return [n for n in self.nodes.values() if n.is_controller]

    @property
    def bootstrap(self):
        return ",".join(n.broker_addr for n in self.brokers)

    def node_ids(self):
        return sorted(self.nodes)

    # ---- bookkeeping for --cleanup ---------------------------------------------------------------

    def save_state(self):
        st = {
            "run_dir": self.run_dir,
            "harness_pid": os.getpid(),
            "pids": [n.proc.pid for n in self.nodes.values() if n.proc is not None and n.proc.poll() is None],
            "mounts": list(self.mounts),
            "netns": self.net is not None and self.net.created,
        }
        tmp = f"{self.run_dir}/state.json.tmp"
        with open(tmp, "w") as f:
            json.dump(st, f)
        os.replace(tmp, f"{self.run_dir}/state.json")

    # ---- set-up ------------------------------------------------------------------------------

    def properties(self, n):
        voters = ",".join(f"{c.id}@{c.ip}:{c.controller_port}" for c in self.controllers)
        nb = len(self.brokers)
        p = [
            ("process.roles", ",".join(n.roles)),
            ("node.id", str(n.id)),
            ("controller.quorum.voters", voters),
        ]
        listeners = []
        if n.is_broker:
            listeners.append(f"PLAINTEXT://{n.ip}:{n.broker_port}")
        if n.is_controller:
            listeners.append(f"CONTROLLER://{n.ip}:{n.controller_port}")
        p.append(("listeners", ",".join(listeners)))
        if n.is_broker:
            p += [("advertised.listeners", f"PLAINTEXT://{n.ip}:{n.broker_port}"),
                  ("inter.broker.listener.name", "PLAINTEXT")]
        p += [
            ("controller.listener.names", "CONTROLLER"),
            ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"),
            ("log.dirs", n.data_dir if n.is_broker else n.meta_dir),
            ("metadata.log.dir", n.meta_dir),
            ("num.partitions", "3"),
            ("default.replication.factor", str(min(3, nb))),
            ("min.insync.replicas", "2"),
            ("offsets.topic.replication.factor", str(min(3, nb))),
            ("transaction.state.log.replication.factor", str(min(3, nb))),
            ("transaction.state.log.min.isr", "2"),
            ("group.initial.rebalance.delay.ms", "0"),
            ("auto.create.topics.enable", "false"),
        ]
        for o in self.overrides:
            k, _, v = o.partition("=")
            idx = [j for j, (kk, _) in enumerate(p) if kk == k]
            if idx:
                p[idx[0]] = (k, v)
            else:
                p.append((k, v))
        return "".join(f"{k}={v}\n" for k, v in p)

    def setup(self):
        os.makedirs(self.run_dir, exist_ok=True)
        self.save_state()
        cid = subprocess.run([self.fjord, "storage", "random-uuid"], capture_output=True, text=True,
                             check=True, timeout=30).stdout.strip().splitlines()[-1]
        self.cluster_id = cid
        for n in self.nodes.values():
            os.makedirs(n.meta_dir, exist_ok=True)
            if n.is_broker:
                os.makedirs(n.mount_dir, exist_ok=True)
                r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.tmpfs_mb}m,mode=0755",
                                    f"fjf-data{n.id}", n.mount_dir], capture_output=True, text=True)
                if r.returncode == 0:
                    self.mounts.append(n.mount_dir)
                    self.save_state()
                else:
                    self.log(f"notice: cannot mount a tmpfs on {n.mount_dir} ({r.stderr.strip()}); disk-full is unavailable")
                os.makedirs(n.data_dir, exist_ok=True)
            with open(n.props, "w") as f:
                f.write(self.properties(n))
            r = subprocess.run([self.fjord, "storage", "format", "-t", cid, "-c", n.props],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"format of node {n.id} failed: {r.stdout}{r.stderr}")

    def has_tmpfs(self, n):
        return n.mount_dir in self.mounts

    # ---- processes ---------------------------------------------------------------------------

    def start(self, n):
        with self.lock:
            if n.proc is not None and n.proc.poll() is None:
                return
            prefix = self.net.exec_prefix(n.id) if self.net is not None else []
            logf = open(n.log, "ab")
            logf.write(f"\n==== fjord-faults: start #{n.starts + 1} at {time.strftime('%H:%M:%S')} ====\n".encode())
            logf.flush()
            n.proc = subprocess.Popen(prefix + [self.fjord, "server-start", n.props], stdout=logf,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True, env=self.env)
            logf.close()
            n.starts += 1
            n.state = "up"
            self.save_state()

    def wait_ready(self, n, timeout=60):
        """Waits until the node serves: its broker port (brokers open it once unfenced) or its
        controller port."""
        host, port = n.ip, (n.broker_port if n.is_broker else n.controller_port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if n.proc is None or n.proc.poll() is not None:
                return False
            if port_open(host, port):
                return True
            time.sleep(0.1)
        return False

    def start_all(self, timeout=90):
        for n in self.controllers:
            self.start(n)
        for n in self.brokers:
            if n.proc is None:
                self.start(n)
        for n in self.nodes.values():
            if not self.wait_ready(n, timeout):
                raise RuntimeError(f"node {n.id} did not start serving within {timeout} s; see {n.log}:\n" + self.log_tail(n))

    def kill9(self, n):
        with self.lock:
            if n.proc is not None and n.proc.poll() is None:
                os.kill(n.proc.pid, signal.SIGKILL)
                n.proc.wait()
            n.state = "down"
            self.save_state()

    def pause(self, n):
        with self.lock:
            if n.proc is not None and n.proc.poll() is None:
                os.kill(n.proc.pid, signal.SIGSTOP)
                n.state = "paused"

    def resume(self, n):
        with self.lock:
            if n.proc is not None and n.proc.poll() is None:
                os.kill(n.proc.pid, signal.SIGCONT)
                n.state = "up"

    def check_crashes(self):
        """Nodes whose process ended without our kill: recorded (with their log's tail) and
        marked crashed; the healing phase restarts them."""
        found = []
        with self.lock:
            for n in self.nodes.values():
                if n.state in ("up", "paused") and n.proc is not None and n.proc.poll() is not None:
                    rc = n.proc.returncode
                    n.state = "crashed"
                    tail = self.log_tail(n, 40)
                    self.crashes.append((time.time(), n.id, rc, tail))
                    found.append((n, rc, tail))
                    self.save_state()
        for n, rc, tail in found:
            if self.on_crash:
                self.on_crash(n, rc, tail)
        return found

    def log_tail(self, n, lines=30):
        try:
            with open(n.log, "rb") as f:
                f.seek(0, 2)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                data = f.read().decode("utf-8", "replace")
            return "\n".join(data.splitlines()[-lines:])
        except OSError:
            return ""

    def stop_all(self):
        with self.lock:
            for n in self.nodes.values():
                if n.proc is not None and n.proc.poll() is None:
                    try:
                        os.kill(n.proc.pid, signal.SIGCONT)
                        os.kill(n.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    try:
                        n.proc.wait(10)
                    except subprocess.TimeoutExpired:
                        pass
                n.state = "down"
            self.save_state()

    def unmount_all(self):
        for m in list(self.mounts):
            r = subprocess.run(["umount", m], capture_output=True, text=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", m], capture_output=True, text=True)
            self.mounts.remove(m)
        self.save_state()

    # ---- tools -------------------------------------------------------------------------------

    def quorum_status(self, n, timeout=10):
        """``fjord metadata-quorum --bootstrap-controller`` describe --status, as a dict."""
        try:
            r = subprocess.run([self.fjord, "metadata-quorum", "--bootstrap-controller", n.controller_addr,
                                "describe", "--status"], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0:
            return None
        out = {}
        for line in r.stdout.splitlines():
            k, sep, v = line.partition(":")
            if sep:
                out[k.strip()] = v.strip()
        return out


def cleanup_stale(log=print):
    """Kills the fjord processes and unmounts the tmpfs of runs that did not clean up (their
    state.json files), then removes stale namespaces and the bridge."""
    import glob
    for st in glob.glob("/tmp/fjord-faults-*/state.json"):
        try:
            with open(st) as f:
                s = json.load(f)
        except (OSError, ValueError):
            continue
        hp = s.get("harness_pid")
        if hp and os.path.exists(f"/proc/{hp}"):
            try:
                with open(f"/proc/{hp}/cmdline", "rb") as f:
                    if b"fjfaults" in f.read():
                        continue          # that run is alive: not ours to clean
            except OSError:
                pass
        for pid in s.get("pids", []):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if "server-start" in cmd and s["run_dir"] in cmd:
                log(f"cleanup: killing stale fjord process {pid}")
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for m in s.get("mounts", []):
            if os.path.ismount(m):
                log(f"cleanup: unmounting {m}")
                subprocess.run(["umount", "-l", m], capture_output=True)
        s["pids"], s["mounts"] = [], []
        with open(st, "w") as f:
            json.dump(s, f)
