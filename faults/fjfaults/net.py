"""The private network of a run: one network namespace per node (``fjf-n<id>``), a veth pair
per node on a bridge ``fjfbr0`` that the tool creates, and the faults on it.

Only what this module created is ever touched: the bridge, the namespaces named ``fjf-*``, the
veth devices ``fjfv<id>`` and the addresses of the private subnet. Faults are nftables rules in a
table of the node's own namespace (``inet fjf``; gone with the namespace) and ``tc`` qdiscs on
the node's devices. Clients stay in the root namespace and reach the nodes over the bridge.

The kernel of the machine this was written on has no ``sch_netem``: "slow" is a token bucket
(``tc ... tbf``: bandwidth limit with queueing delay) rather than a fixed added latency, and
packet loss is an nftables ``numgen random`` rule. Without nft, loss is unavailable and
partitions fall back to ``ip route add blackhole`` (which fails the sender's packets locally
instead of dropping them silently).
"""
import ipaddress
import shutil
import subprocess

DEFAULT_SUBNET = "10.213.0"


def names(slot=0):
    """(bridge, namespace prefix, veth prefix) of a slot: slot 0 is fjfbr0 / fjf-n<id> / fjfv<id>;
    another slot (--slot, for a second run on the same machine) fjfbr<slot> / fjf<slot>-n<id> / fjf<slot>v<id>."""
    if slot == 0:
        return "fjfbr0", "fjf-n", "fjfv"
    return f"fjfbr{slot}", f"fjf{slot}-n", f"fjf{slot}v"


def sh(args, check=True, input=None, timeout=20):
    r = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def netns_supported():
    """(ok, reason): can we create namespaces, a bridge and veths here?"""
    if shutil.which("ip") is None:
        return False, "iproute2 (ip) is not installed"
    import os
    probe, dev = f"fjf-probe{os.getpid()}", f"fjfp{os.getpid()}"
    try:
        r = sh(["ip", "netns", "add", probe], check=False)
        if r.returncode != 0:
            return False, f"ip netns add failed: {r.stderr.strip()}"
        sh(["ip", "netns", "del", probe], check=False)
        r = sh(["ip", "link", "add", dev, "type", "bridge"], check=False)
        if r.returncode != 0:
            return False, f"ip link add (bridge) failed: {r.stderr.strip()}"
        sh(["ip", "link", "del", dev], check=False)
        return True, ""
    except (OSError, subprocess.SubprocessError) as e:
        return False, str(e)


def stale_cleanup(log=print, slot=0):
    """Removes the namespaces, bridge and veths of this slot left by a killed run."""
    BRIDGE, NS_PREFIX, VETH_PREFIX = names(slot)
    r = sh(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(NS_PREFIX):
            log(f"cleanup: removing stale namespace {name}")
            sh(["ip", "netns", "del", name], check=False)
    r = sh(["ip", "-o", "link", "show"], check=False)
    for line in r.stdout.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            dev = parts[1].strip().split("@")[0]
            if dev == BRIDGE or dev.startswith(VETH_PREFIX):
                log(f"cleanup: removing stale device {dev}")
                sh(["ip", "link", "del", dev], check=False)


class Net:
    def __init__(self, node_ids, subnet=DEFAULT_SUBNET, log=print, slot=0):
        self.bridge, self.ns_prefix, self.veth_prefix = names(slot)
        self.ids = list(node_ids)
        self.subnet = subnet
        self.log = log
        self.host_ip = f"{subnet}.1"
        self.created = False
        self.have_nft = shutil.which("nft") is not None
        self.blocked = {i: set() for i in self.ids}   # node -> source ips dropped on its input
        self.loss = {}                                 # node -> percent
        self.slow = set()

    def ns(self, i):
        return f"{self.ns_prefix}{i}"

    def ip(self, i):
        return f"{self.subnet}.{10 + i}"

    def veth(self, i):
        return f"{self.veth_prefix}{i}"

    def exec_prefix(self, i):
        return ["ip", "netns", "exec", self.ns(i)]

    def setup(self):
        net = ipaddress.ip_network(f"{self.subnet}.0/24")
        r = sh(["ip", "-4", "-o", "addr", "show"], check=False)
        for line in r.stdout.splitlines():
            for tok in line.split():
                if "/" in tok:
                    try:
                        if ipaddress.ip_interface(tok).ip in net:
                            raise RuntimeError(f"subnet {net} is already in use on this machine ({line.strip()}); pass --subnet")
                    except ValueError:
                        pass
        self.created = True  # from here on, teardown removes whatever exists
        sh(["ip", "link", "add", self.bridge, "type", "bridge"])
        sh(["ip", "addr", "add", f"{self.host_ip}/24", "dev", self.bridge])
        sh(["ip", "link", "set", self.bridge, "up"])
        for i in self.ids:
            ns = self.ns(i)
            sh(["ip", "netns", "add", ns])
            sh(["ip", "link", "add", self.veth(i), "type", "veth", "peer", "name", "eth0", "netns", ns])
            sh(["ip", "link", "set", self.veth(i), "master", self.bridge])
            sh(["ip", "link", "set", self.veth(i), "up"])
            x = self.exec_prefix(i)
            sh(x + ["ip", "addr", "add", f"{self.ip(i)}/24", "dev", "eth0"])
            sh(x + ["ip", "link", "set", "eth0", "up"])
            sh(x + ["ip", "link", "set", "lo", "up"])
            if self.have_nft:
                sh(x + ["nft", "-f", "-"], input=(
                    "table inet fjf {\n"
                    "  chain input { type filter hook input priority 0; policy accept; }\n"
                    "}\n"))

    def teardown(self):
        if not self.created:
            return
        for i in self.ids:
            sh(["ip", "netns", "del", self.ns(i)], check=False)   # takes its veth pair with it
            sh(["ip", "link", "del", self.veth(i)], check=False)
        sh(["ip", "link", "del", self.bridge], check=False)
        self.created = False

    # ---- rules -------------------------------------------------------------------------------

    def _apply(self, i):
        """Rewrites node i's input chain from self.blocked / self.loss."""
        x = self.exec_prefix(i)
        if self.have_nft:
            rules = ["flush chain inet fjf input"]
            for src in sorted(self.blocked[i]):
                rules.append(f"add rule inet fjf input ip saddr {src} drop")
            if self.loss.get(i):
                rules.append(f"add rule inet fjf input numgen random mod 100 < {int(self.loss[i])} drop")
            sh(x + ["nft", "-f", "-"], input="\n".join(rules) + "\n")
        else:
            # Fallback: blackhole routes to the blocked peers in this namespace (one direction).
            r = sh(x + ["ip", "route", "show", "type", "blackhole"], check=False)
            have = {line.split()[1] for line in r.stdout.splitlines() if line.startswith("blackhole")}
            for src in have - self.blocked[i]:
                sh(x + ["ip", "route", "del", "blackhole", src], check=False)
            for src in self.blocked[i] - have:
                sh(x + ["ip", "route", "add", "blackhole", src], check=False)

    def drop(self, dst, src):
        """dst drops every packet from src (one direction)."""
        self.blocked[dst].add(self.ip(src) if isinstance(src, int) else src)
        self._apply(dst)

    def partition(self, groups):
        """Nodes in different groups cannot talk (both directions); clients still reach all."""
        where = {n: gi for gi, g in enumerate(groups) for n in g}
        for a in self.ids:
            for b in self.ids:
                if a != b and a in where and b in where and where[a] != where[b]:
                    self.blocked[a].add(self.ip(b))
        for a in self.ids:
            self._apply(a)

    def cut(self, pairs):
        """Each (a, b): a and b cannot talk, in both directions."""
        for a, b in pairs:
            self.blocked[a].add(self.ip(b))
            self.blocked[b].add(self.ip(a))
        for i in {x for pr in pairs for x in pr}:
            self._apply(i)

    def set_loss(self, i, percent):
        if not self.have_nft:
            raise RuntimeError("packet loss needs nft")
        self.loss[i] = percent
        self._apply(i)

    def set_slow(self, i, rate="512kbit", latency_ms=400):
        """Bandwidth limit with queueing (tbf) on both ends of node i's link."""
        for dev, x in ((self.veth(i), []), ("eth0", self.exec_prefix(i))):
            sh(x + ["tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate,
                    "burst", "3000", "latency", f"{latency_ms}ms"])
        self.slow.add(i)

    def heal(self):
        for i in self.ids:
            changed = bool(self.blocked[i] or self.loss.get(i))
            self.blocked[i] = set()
            self.loss.pop(i, None)
            if changed:
                self._apply(i)
        for i in list(self.slow):
            for dev, x in ((self.veth(i), []), ("eth0", self.exec_prefix(i))):
                sh(x + ["tc", "qdisc", "del", "dev", dev, "root"], check=False)
            self.slow.discard(i)
