/// `producer-perf-test` statistics, reported as Kafka's `ProducerPerformance` does: a line per
/// 5-second window and a final line with latency percentiles. Latencies are whole
/// milliseconds from `send` to acknowledgement; percentiles come from a sample of at most
/// 500,000 records (every `numRecords / 500000`-th).
public struct ProducerPerfStats: Sendable {
    public let startMs: Int64
    public let reportingIntervalMs: Int64
    let sampling: Int
    var latencies: [Int32] = []
    public private(set) var count = 0
    public private(set) var bytes: Int64 = 0
    var maxLatency = 0
    var totalLatency: Int64 = 0
    var windowStart: Int64
    var windowCount = 0
    var windowMaxLatency = 0
    var windowTotalLatency: Int64 = 0
    var windowBytes: Int64 = 0
    var iteration = 0

    public init(numRecords: Int, startMs: Int64, reportingIntervalMs: Int64 = 5_000) {
        self.startMs = startMs
        self.reportingIntervalMs = reportingIntervalMs
        windowStart = startMs
        sampling = max(1, numRecords / min(max(numRecords, 1), 500_000))
        latencies.reserveCapacity(min(max(numRecords, 1), 500_000) + 1)
    }

    /// Records one acknowledged record; returns the window line when a window closed.
    public mutating func record(latencyMs: Int, bytes: Int, nowMs: Int64) -> String? {
        count += 1
        self.bytes += Int64(bytes)
        totalLatency += Int64(latencyMs)
        maxLatency = max(maxLatency, latencyMs)
        windowCount += 1
        windowBytes += Int64(bytes)
        windowTotalLatency += Int64(latencyMs)
        windowMaxLatency = max(windowMaxLatency, latencyMs)
        if iteration % sampling == 0 { latencies.append(Int32(clamping: latencyMs)) }
        iteration += 1
        if nowMs - windowStart >= reportingIntervalMs {
            let line = windowLine(nowMs: nowMs)
            windowStart = nowMs
            windowCount = 0
            windowMaxLatency = 0
            windowTotalLatency = 0
            windowBytes = 0
            return line
        }
        return nil
    }

    /// `N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency.`
    public func windowLine(nowMs: Int64) -> String {
        let elapsed = Double(max(1, nowMs - windowStart))
        let rps = 1000.0 * Double(windowCount) / elapsed
        let mbps = 1000.0 * Double(windowBytes) / elapsed / (1024.0 * 1024.0)
        let avg = windowCount == 0 ? 0 : Double(windowTotalLatency) / Double(windowCount)
        return "\(windowCount) records sent, \(ToolSupport.fixed(rps, 1)) records/sec (\(ToolSupport.fixed(mbps, 2)) MB/sec), "
            + "\(ToolSupport.fixed(avg, 1)) ms avg latency, \(ToolSupport.fixed(Double(windowMaxLatency), 1)) ms max latency."
    }

    /// The final line with percentiles.
    public func totalLine(nowMs: Int64) -> String {
        let elapsed = Double(max(1, nowMs - startMs))
        let rps = 1000.0 * Double(count) / elapsed
        let mbps = 1000.0 * Double(bytes) / elapsed / (1024.0 * 1024.0)
        let avg = count == 0 ? 0 : Double(totalLatency) / Double(count)
        let sorted = latencies.sorted()
        func pct(_ p: Double) -> Int32 {
            guard !sorted.isEmpty else { return 0 }
            return sorted[min(sorted.count - 1, Int(p * Double(sorted.count)))]
        }
        return "\(count) records sent, \(ToolSupport.fixed(rps, 6)) records/sec (\(ToolSupport.fixed(mbps, 2)) MB/sec), "
            + "\(ToolSupport.fixed(avg, 2)) ms avg latency, \(ToolSupport.fixed(Double(maxLatency), 2)) ms max latency, "
            + "\(pct(0.5)) ms 50th, \(pct(0.95)) ms 95th, \(pct(0.99)) ms 99th, \(pct(0.999)) ms 99.9th."
    }
}

/// Paces a loop to `targetPerSec` (negative: unlimited), sleeping in small steps as Kafka's
/// `ThroughputThrottler` does.
public struct Throttler: Sendable {
    public let targetPerSec: Double
    let startNs: UInt64

    public init(targetPerSec: Double, startNs: UInt64) {
        self.targetPerSec = targetPerSec
        self.startNs = startNs
    }

    /// Whether `sent` items by `nowNs` is ahead of the target.
    public func shouldThrottle(sent: Int, nowNs: UInt64) -> Bool {
        guard targetPerSec > 0 else { return false }
        let elapsed = Double(nowNs - startNs) / 1e9
        return elapsed > 0 && Double(sent) / elapsed > targetPerSec
    }

    /// Nanoseconds to sleep so that `sent` items are on target.
    public func sleepNs(sent: Int, nowNs: UInt64) -> UInt64 {
        guard targetPerSec > 0 else { return 0 }
        let due = startNs + UInt64(Double(sent) / targetPerSec * 1e9)
        return due > nowNs ? due - nowNs : 0
    }
}

/// Kafka's `kafka-consumer-perf-test` summary.
public enum ConsumerPerfFormat {
    public static let header = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"

    /// The CSV line: times, MB, MB/s, messages, messages/s, rebalance ms, fetch ms, fetch MB/s, fetch messages/s.
    public static func line(startMs: Int64, endMs: Int64, bytes: Int64, messages: Int, rebalanceMs: Int64) -> String {
        let elapsedSecs = Double(max(1, endMs - startMs)) / 1000.0
        let mb = Double(bytes) / (1024.0 * 1024.0)
        let fetchMs = max(1, endMs - startMs - rebalanceMs)
        let fetchSecs = Double(fetchMs) / 1000.0
        return "\(ToolSupport.localTimestamp(ms: startMs)), \(ToolSupport.localTimestamp(ms: endMs)), \(ToolSupport.fixed(mb, 4)), "
            + "\(ToolSupport.fixed(mb / elapsedSecs, 4)), \(messages), \(ToolSupport.fixed(Double(messages) / elapsedSecs, 4)), "
            + "\(rebalanceMs), \(fetchMs), \(ToolSupport.fixed(mb / fetchSecs, 4)), \(ToolSupport.fixed(Double(messages) / fetchSecs, 4))"
    }
}
