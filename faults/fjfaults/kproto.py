"""A few Kafka requests sent to one chosen node over a plain socket, so a checker can ask each
broker (or controller) for its own view: Metadata v12 (leaders, ISRs, leader epochs, topic ids),
DescribeConfigs v1 and DescribeQuorum v0. Client libraries route these to "any broker",
which is not what a per-node check needs."""
import socket
import struct
import uuid


class Buf:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def take(self, n):
        if self.i + n > len(self.d):
            raise ValueError("short response")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def i8(self):
        return struct.unpack(">b", self.take(1))[0]

    def i16(self):
        return struct.unpack(">h", self.take(2))[0]

    def i32(self):
        return struct.unpack(">i", self.take(4))[0]

    def i64(self):
        return struct.unpack(">q", self.take(8))[0]

    def boolean(self):
        return self.take(1) != b"\0"

    def uvarint(self):
        shift, v = 0, 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def cstring(self):
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def uuid(self):
        return str(uuid.UUID(bytes=self.take(16)))

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())

    def carray(self, f):
        n = self.uvarint() - 1
        return None if n < 0 else [f() for _ in range(n)]

    def array(self, f):
        n = self.i32()
        return None if n < 0 else [f() for _ in range(n)]


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def cstring(s):
    b = s.encode()
    return uvarint(len(b) + 1) + b


_corr = [0]


def call(addr, api_key, version, body, flexible, timeout=3.0):
    """Sends one request to host:port and returns the response body (after the header)."""
    host, port = addr.rsplit(":", 1)
    _corr[0] = (_corr[0] + 1) & 0x7FFFFFFF
    corr = _corr[0]
    hdr = struct.pack(">hhi", api_key, version, corr) + string("fjord-faults")
    if flexible:
        hdr += b"\0"
    msg = hdr + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, size)
    b = Buf(data)
    if b.i32() != corr:
        raise ValueError("correlation id mismatch")
    if flexible:
        b.tags()
    return b


def _recv(s, n):
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("connection closed")
        out += chunk
    return bytes(out)


def metadata(addr, timeout=3.0):
    """Metadata v12 for all topics from the broker at addr: {"brokers": {id: host:port},
    "controller": id, "topics": {name: {"id", "error", "partitions": {p: {leader, epoch, replicas, isr}}}}}."""
    body = b"\0" + b"\0" + b"\0" + b"\0"   # topics: null (all); allow auto create false; include topic ops false; tags
    b = call(addr, 3, 12, body, True, timeout)
    b.i32()  # throttle

    def broker():
        nid, host, port, _rack = b.i32(), b.cstring(), b.i32(), b.cstring()
        b.tags()
        return nid, f"{host}:{port}"

    brokers = dict(b.carray(broker) or [])
    b.cstring()  # cluster id
    controller = b.i32()

    def partition():
        err, idx, leader, epoch = b.i16(), b.i32(), b.i32(), b.i32()
        replicas = b.carray(b.i32)
        isr = b.carray(b.i32)
        b.carray(b.i32)  # offline
        b.tags()
        return idx, {"error": err, "leader": leader, "epoch": epoch, "replicas": replicas, "isr": isr}

    def topic():
        err, name, tid, _internal = b.i16(), b.cstring(), b.uuid(), b.boolean()
        parts = dict(b.carray(partition) or [])
        b.i32()  # authorized operations
        b.tags()
        return name, {"error": err, "id": tid, "partitions": parts}

    topics = dict(b.carray(topic) or [])
    return {"brokers": brokers, "controller": controller, "topics": topics}


def describe_topic_configs(addr, topics, keys=None, timeout=3.0):
    """DescribeConfigs v1 for topics → {topic: (error, {name: value})}."""
    body = struct.pack(">i", len(topics))
    for t in topics:
        body += struct.pack(">b", 2) + string(t)
        if keys is None:
            body += struct.pack(">i", -1)
        else:
            body += struct.pack(">i", len(keys)) + b"".join(string(k) for k in keys)
    body += b"\0"  # include synonyms: false
    b = call(addr, 32, 1, body, False, timeout)
    b.i32()
    out = {}

    def synonym():
        b.string(), b.string(), b.i8()

    def config():
        name, value, _ro, _src, _sens = b.string(), b.string(), b.boolean(), b.i8(), b.boolean()
        b.array(synonym)
        return name, value

    def result():
        err, _msg, _rt, name = b.i16(), b.string(), b.i8(), b.string()
        configs = dict(b.array(config) or [])
        out[name] = (err, configs)

    b.array(result)
    return out


def describe_quorum(addr, timeout=3.0):
    """DescribeQuorum v2 for __cluster_metadata-0 at a controller → {"leader", "epoch", "hw",
    "voters": [(id, leo)], "observers": [...]} or {"error": code}. (v2: Fjord cannot answer
    v0/v1, see docs/FAULTS.md.)"""
    body = uvarint(2) + cstring("__cluster_metadata") + uvarint(2) + struct.pack(">i", 0) + b"\0" + b"\0" + b"\0"
    b = call(addr, 55, 2, body, True, timeout)
    err = b.i16()
    b.cstring()

    def replica():
        rid = b.i32()
        b.uuid()
        leo = b.i64()
        b.i64(), b.i64()
        b.tags()
        return rid, leo

    def partition():
        idx, perr = b.i32(), b.i16()
        b.cstring()
        leader, epoch, hw = b.i32(), b.i32(), b.i64()
        voters = b.carray(replica)
        observers = b.carray(replica)
        b.tags()
        return {"error": perr, "leader": leader, "epoch": epoch, "hw": hw, "voters": voters, "observers": observers}

    def topic():
        name = b.cstring()
        parts = b.carray(partition)
        b.tags()
        return name, parts

    topics = b.carray(topic) or []
    if err != 0 or not topics or not topics[0][1]:
        return {"error": err}
    return topics[0][1][0]


def fetch(addr, topic, partition, offset, max_bytes=1 << 20, timeout=5.0):
    """Fetch v4 (read_uncommitted) of one partition at addr → (error, high watermark, raw
    record-batch bytes). The raw bytes carry what client consumers hide: each batch's
    producer id, producer epoch and base sequence."""
    body = struct.pack(">iiiib", -1, 100, 1, max_bytes, 0)
    body += struct.pack(">i", 1) + string(topic) + struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, max_bytes)
    b = call(addr, 1, 4, body, False, timeout)
    b.i32()  # throttle
    err, hw, data = -1, -1, b""
    for _ in range(b.i32()):
        b.string()
        for _ in range(b.i32()):
            _p, err, hw = b.i32(), b.i16(), b.i64()
            b.i64()  # last stable offset
            b.array(lambda: (b.i64(), b.i64()))  # aborted transactions
            n = b.i32()
            data = b.take(n) if n > 0 else b""
    return err, hw, data
