"""The history of a run: one JSON object per line, in the order events happened.

Each entry has ``time`` (seconds since the run started, monotonic clock), ``process`` (a client
such as ``p3`` or ``admin1``, or ``nemesis``), ``type`` and ``f`` (the operation) and ``value``:

- ``invoke``: an operation began;
- ``ok``: it completed and took effect;
- ``fail``: it completed with an error (the server said no; the metadata checker still treats a
  failed admin operation as possibly applied, since a forwarding broker may have retried it);
- ``info``: its outcome is unknown (timeouts, lost connections): it may or may not have taken effect.

Nemesis entries are ``info`` entries with ``f`` = ``start``/``stop`` and a ``value`` describing
the fault; final reads are ``ok`` entries with ``f`` = ``read``.
"""
import json
import threading
import time


class History:
    def __init__(self, path):
        self.path = path
        self.f = open(path, "w", buffering=1 << 20)
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self.count = 0
        self.write({"time": 0.0, "process": "harness", "type": "info", "f": "begin",
                    "value": {"wall_clock": self.wall0}})

    def now(self):
        return time.monotonic() - self.t0

    def write(self, e):
        line = json.dumps(e, separators=(",", ":"))
        with self.lock:
            self.f.write(line + "\n")
            self.count += 1

    def add(self, process, type, f, value=None, t=None):
        e = {"time": round(self.now() if t is None else t, 6), "process": process, "type": type, "f": f, "value": value}
        self.write(e)
        return e

    def flush(self):
        with self.lock:
            self.f.flush()

    def close(self):
        with self.lock:
            if not self.f.closed:
                self.f.close()


def load(path):
    with open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
