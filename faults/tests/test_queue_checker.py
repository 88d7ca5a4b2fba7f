"""The queue checker on hand-made histories: a broker that fails to deduplicate (the same
producer, epoch and sequence written twice) is a violation; a client's re-send of an
unacknowledged record in a later producer epoch (librdkafka #4953) is a note."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from fjfaults import queue  # noqa: E402


def history(records, writers, acks):
    """records: [(offset, value)] of partition 0; writers: [(pid, epoch, seq)] per record;
    acks: {value: offset or None}."""
    t = 0.0
    out = []
    values = sorted({v for _, v in records} | set(acks))
    for v in values:
        out.append({"time": t, "process": "p", "type": "invoke", "f": "send", "value": {"v": v}})
    for v, o in acks.items():
        out.append({"time": t, "process": "p", "type": "ok", "f": "send", "value": {"v": v, "p": 0, "o": o}})
    recs = [list(r) for r in records]
    end = (records[-1][0] + 1) if records else 0
    for r in ("reader-confluent", "reader-raw"):
        val = {"p": 0, "end": end, "records": recs}
        if r == "reader-raw":
            val["writers"] = [list(w) for w in writers]
        out.append({"time": t, "process": r, "type": "ok", "f": "read", "value": val})
    return out


class QueueCheckerTests(unittest.TestCase):
    def test_clean_history_is_valid(self):
        r = queue.check(history([(0, "a:0"), (1, "a:1")], [(7, 0, 0), (7, 0, 1)], {"a:0": 0, "a:1": 1}))
        self.assertTrue(r["valid"], r)

    def test_same_epoch_and_sequence_twice_is_a_duplicate(self):
        r = queue.check(history([(0, "a:0"), (1, "a:1"), (2, "a:1")], [(7, 0, 0), (7, 0, 1), (7, 0, 1)],
                                {"a:0": 0, "a:1": 1}))
        self.assertFalse(r["valid"])
        self.assertIn("duplicate", r["counts"])

    def test_resend_in_a_later_epoch_is_a_note(self):
        # a:1 and a:2 written in epoch 0, not acknowledged; the client bumped its epoch and
        # sent them again with sequences 0 and 1; the acknowledgements name the new copies.
        recs = [(0, "a:0"), (1, "a:1"), (2, "a:2"), (3, "a:1"), (4, "a:2"), (5, "a:3")]
        ws = [(7, 0, 0), (7, 0, 1), (7, 0, 2), (7, 1, 0), (7, 1, 1), (7, 1, 2)]
        r = queue.check(history(recs, ws, {"a:0": 0, "a:1": 3, "a:2": 4, "a:3": 5}))
        self.assertTrue(r["valid"], r)
        self.assertEqual(r["stats"]["resent_after_epoch_bump"], 2)
        self.assertTrue(any("a:1" in n for n in r["notes"]))

    def test_resend_whose_first_copy_was_acknowledged_is_a_duplicate(self):
        recs = [(0, "a:0"), (1, "a:0")]
        r = queue.check(history(recs, [(7, 0, 0), (7, 1, 0)], {"a:0": 0}))
        self.assertFalse(r["valid"])
        self.assertIn("duplicate", r["counts"])

    def test_copies_in_two_partitions_are_a_duplicate(self):
        h = history([(0, "a:0")], [(7, 0, 0)], {"a:0": None})
        for e in h:
            if e["f"] == "read":
                e["value"] = dict(e["value"])
        extra = []
        for r in ("reader-confluent", "reader-raw"):
            val = {"p": 1, "end": 1, "records": [[0, "a:0"]]}
            if r == "reader-raw":
                val["writers"] = [[7, 1, 0]]
            extra.append({"time": 0.0, "process": r, "type": "ok", "f": "read", "value": val})
        r = queue.check(h + extra)
        self.assertFalse(r["valid"])
        self.assertIn("duplicate", r["counts"])

    def test_copies_from_different_producers_are_a_duplicate(self):
        recs = [(0, "a:0"), (1, "a:0")]
        r = queue.check(history(recs, [(7, 0, 0), (8, 1, 0)], {"a:0": None}))
        self.assertFalse(r["valid"])

    def test_copies_without_writers_are_a_duplicate(self):
        recs = [(0, "a:0"), (1, "a:0")]
        h = [e for e in history(recs, [(7, 0, 0), (7, 1, 0)], {"a:0": 1}) if e["process"] != "reader-raw"]
        r = queue.check(h)
        self.assertFalse(r["valid"])

    def test_lost_acknowledged_write(self):
        r = queue.check(history([(0, "a:0")], [(7, 0, 0)], {"a:0": 0, "a:1": 1}))
        self.assertEqual(r["counts"].get("lost"), 1)


if __name__ == "__main__":
    unittest.main()
