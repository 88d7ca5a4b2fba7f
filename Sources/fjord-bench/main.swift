// fjord-bench: micro-benchmarks that report ratios against a baseline measured in the same run.
//
//   fjord-bench batch            record batch decode + CRC + iteration vs memcpy
//   fjord-bench codecs (codec)   gzip/snappy/lz4/zstd wrapper vs the C libraries; CRC-32C vs memcpy
//   fjord-bench storage          log append / read / index lookups vs raw file I/O
//   fjord-bench raft             3-voter KRaft quorum on disk: commits/s, latency vs fsync
//   fjord-bench all              every benchmark, in this order

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

let benchmarks: [(names: [String], run: () -> Void)] = [
    (["batch"], runBatchBench),
    (["codecs", "codec"], runCodecBench),
    (["storage"], {
        do { try runStorageBench() } catch { print("storage: FAILED: \(error)") }
    }),
    (["raft"], {
        do { try runRaftBench() } catch { print("raft: FAILED: \(error)") }
    }),
]

let requested = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "all"
if requested == "all" {
    for b in benchmarks { b.run() }
} else if let b = benchmarks.first(where: { $0.names.contains(requested) }) {
    b.run()
} else {
    print("usage: fjord-bench [\((benchmarks.map { $0.names[0] } + ["all"]).joined(separator: "|"))]")
    exit(2)
}
