"""Fjord's fault-injection suite (issue #9): real fjord processes, real Kafka clients, seeded
faults (kills, pauses, partitions, slow and lossy links, torn logs, full disks) and checkers
that read the recorded history. Entry point: faults/run (see runner.py)."""
