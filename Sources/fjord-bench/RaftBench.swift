#if canImport(Glibc)
import Glibc
#endif
import FjordRaft
import FjordRaftRuntime
import FjordStorage
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// KRaft runtime on real disk: a 3-voter in-process quorum (each voter fsyncs its own log and
/// quorum state) committing 100-byte records with many proposals in flight. Prints committed
/// records/s and commit latency p50/p99, against the latency of one 4 KiB append + fdatasync
/// on the same filesystem measured in the same run.
func runRaftBench(records: Int = 50_000, inFlight: Int = 2_000) throws {
    let base = FileManager.default.currentDirectoryPath + "/.build/bench-raft"
    try? FileSystem.removeTree(base)
    try FileSystem.createDirectory(base)
    defer { try? FileSystem.removeTree(base) }

    // Baseline: fdatasync latency of small appends.
    let f = try StorageFile(path: base + "/fsync.bin", create: true)
    let block = ByteBuffer(repeating: 7, count: 4096)
    var syncs: [Double] = []
    for i in 0..<300 {
        let t = DispatchTime.now().uptimeNanoseconds
        try f.write(block, at: i * 4096)
        try f.sync()
        syncs.append(Double(DispatchTime.now().uptimeNanoseconds - t) / 1e6)
    }
    syncs.sort()

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
    defer { try? group.syncShutdownGracefully() }
    let transport = LocalRaftTransport()
    var nodes: [RaftRuntime] = []
    for id: Int32 in 1...3 {
        let r = try RaftRuntime(config: RaftConfig(nodeId: id, voters: [1, 2, 3]), dataDir: "\(base)/node\(id)",
                                loop: group.next(), transport: transport, seed: UInt64(id))
        transport.register(r)
        r.start()
        nodes.append(r)
    }
    var leader: RaftRuntime?
    let deadline = Date().addingTimeInterval(30)
    while leader == nil && Date() < deadline {
        for n in nodes where try n.status().wait().role == .leader { leader = n }
        usleep(20_000)
    }
    guard let leader else { print("raft: no leader elected"); return }

    let payload = ByteBuffer(repeating: 0x61, count: 100)
    let latencyBox = NIOLockedValueBox<[Double]>([])
    let semaphore = DispatchSemaphore(value: inFlight)
    let done = DispatchGroup()
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<records {
        semaphore.wait()
        done.enter()
        let t0 = DispatchTime.now().uptimeNanoseconds
        leader.propose(payload).whenComplete { _ in
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            latencyBox.withLockedValue { $0.append(ms) }
            semaphore.signal()
            done.leave()
        }
    }
    done.wait()
    let secs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    let latencies = latencyBox.withLockedValue { $0 }.sorted()
    func p(_ a: [Double], _ q: Double) -> Double { a[min(a.count - 1, Int(Double(a.count) * q))] }
    print("raft: 3 voters in one process, each fsyncing its own log; \(records) records of 100 B, \(inFlight) in flight, linger 25 ms")
    print(String(format: "  committed %.0f records/s; commit latency p50 %.1f ms, p99 %.1f ms", Double(records) / secs, p(latencies, 0.5), p(latencies, 0.99)))
    print(String(format: "  baseline: 4 KiB append + fdatasync p50 %.2f ms, p99 %.2f ms (%.0f syncs/s); commit p50 = %.1fx one fsync",
                 p(syncs, 0.5), p(syncs, 0.99), 1000 / p(syncs, 0.5), p(latencies, 0.5) / p(syncs, 0.5)))
    for n in nodes { try n.stop().wait() }
}
