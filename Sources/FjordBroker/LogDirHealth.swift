#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers

/// Whether this broker can write its log directories.
///
/// A write that fails on I/O (a full disk) marks the directories failing. While they fail,
/// the broker asks the controller to fence it (`BrokerHeartbeat.WantFence`), so its
/// leaderships move to replicas that can write and it leaves every ISR: acks=all writes do
/// not wait for a replica that cannot store them, and no client keeps producing to a leader
/// that refuses every batch. Kafka reaches the same state by taking a failed log directory
/// offline (or halting the broker when it was the only one); Fjord keeps the process up and
/// probes instead: each `probe()` (once per heartbeat) reserves `probeBytes` in every log
/// directory and, when that works again, clears the failure, the broker asks to be
/// unfenced, catches up as a follower and rejoins the ISRs.
public final class LogDirHealth: @unchecked Sendable {
    public let dirs: [String]
    public let probeBytes: Int
    private let lock = NIOLock()
    private var failedAtMs: Int64 = -1
    private var lastError = ""

    public init(dirs: [String], probeBytes: Int = 8 << 20) {
        self.dirs = dirs
        self.probeBytes = probeBytes
    }

    /// Records a write that failed on I/O.
    public func noteFailure(_ error: any Error, nowMs: Int64) {
        lock.withLock {
            failedAtMs = nowMs
            lastError = "\(error)"
        }
    }

    /// Whether a write failed and no probe has succeeded since.
    public var isFailing: Bool { lock.withLock { failedAtMs >= 0 } }

    /// The last failure, for logs.
    public var failure: String { lock.withLock { lastError } }

    /// While failing: tries to reserve `probeBytes` in every directory (a file created,
    /// allocated with `posix_fallocate`, and removed). Returns whether the directories are
    /// still failing.
    @discardableResult
    public func probe() -> Bool {
        guard isFailing else { return false }
        for dir in dirs where !Self.canReserve(dir: dir, bytes: probeBytes) {
            return true
        }
        lock.withLock {
            failedAtMs = -1
            lastError = ""
        }
        return false
    }

    static func canReserve(dir: String, bytes: Int) -> Bool {
        let path = dir + "/.fjord-space-probe"
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer {
            close(fd)
            unlink(path)
        }
        return posix_fallocate(fd, 0, off_t(bytes)) == 0
    }
}
