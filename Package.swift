// swift-tools-version:6.0
import PackageDescription

/// Shared settings: Swift 6 language mode (strict concurrency) everywhere.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "Fjord",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "fjord", targets: ["fjord"]),
        .executable(name: "fjord-codegen", targets: ["fjord-codegen"]),
        .executable(name: "fjord-bench", targets: ["fjord-bench"]),
        .executable(name: "fjord-sim", targets: ["fjord-sim"]),
        .library(name: "FjordProtocol", targets: ["FjordProtocol"]),
        .library(name: "FjordRecords", targets: ["FjordRecords"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // System C libraries for the record-batch codecs (Debian -dev packages).
        .systemLibrary(name: "CFjordZlib", path: "Sources/CFjordZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CFjordSnappy", path: "Sources/CFjordSnappy",
                       providers: [.apt(["libsnappy-dev"])]),
        .systemLibrary(name: "CFjordLZ4", path: "Sources/CFjordLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CFjordZstd", path: "Sources/CFjordZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"])]),
        // CRC32C with the CPU's CRC instruction (SSE4.2 / ARMv8 CRC) and a table fallback.
        .target(name: "CFjordCRC32C", path: "Sources/CFjordCRC32C"),

        // Wire primitives: integers, varints, strings, bytes, UUIDs on ByteBuffer.
        .target(name: "FjordWire",
                dependencies: [.product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: strict),
        // Generated Kafka messages (from ../shared/kafka-schemas), headers, ApiKey, ErrorCode, framing.
        .target(name: "FjordProtocol",
                dependencies: ["FjordWire", .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: strict),
        // Record batches (magic 2), CRC32C, compression.
        .target(name: "FjordRecords",
                dependencies: ["FjordWire", "CFjordCRC32C", "CFjordZlib", "CFjordSnappy", "CFjordLZ4", "CFjordZstd",
                               .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: strict),
        // Segmented logs with indexes, recovery, retention and compaction.
        .target(name: "FjordStorage",
                dependencies: ["FjordRecords", "FjordProtocol", "FjordWire",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // The KRaft consensus core (sans-I/O) and its in-memory log.
        .target(name: "FjordRaft",
                dependencies: ["FjordRecords", "FjordProtocol", "FjordWire", .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: strict),
        // Deterministic whole-cluster simulation of the KRaft core.
        .target(name: "FjordSimulation",
                dependencies: ["FjordRaft", "FjordRecords", "FjordMetadata", "FjordController", "FjordProtocol", "FjordWire",
                               .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: strict),
        .executableTarget(name: "fjord-sim",
                dependencies: ["FjordSimulation", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: strict),
        // The runtime shell of the KRaft core: metadata log on FjordStorage, quorum-state file,
        // real clock, an event loop, a transport protocol.
        .target(name: "FjordRaftRuntime",
                dependencies: ["FjordRaft", "FjordStorage", "FjordRecords", "FjordProtocol",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // The cluster metadata image and its records (replayed by brokers and controllers alike).
        .target(name: "FjordMetadata",
                dependencies: ["FjordProtocol", "FjordWire", .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: strict),
        // The KRaft controller's logic (sans-I/O): generate metadata records, then replay them.
        .target(name: "FjordController",
                dependencies: ["FjordMetadata", "FjordProtocol", "FjordWire", .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: strict),
        // Kafka protocol client: connections with request/response pairing (used between nodes
        // and by the operator tools).
        .target(name: "FjordClient",
                dependencies: ["FjordProtocol", "FjordRecords", "FjordWire",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // The broker data plane: partitions following the metadata image, produce/fetch,
        // delayed operations, ISR changes, follower fetchers, producer ids.
        .target(name: "FjordBroker",
                dependencies: ["FjordStorage", "FjordMetadata", "FjordProtocol", "FjordRecords", "FjordWire",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // The server: configuration, storage formatting, SwiftNIO listeners and client
        // connections, KRaft over TCP, the node that runs the broker and controller roles.
        .target(name: "FjordServer",
                dependencies: ["FjordRaftRuntime", "FjordRaft", "FjordStorage", "FjordRecords", "FjordProtocol", "FjordWire",
                               "FjordMetadata", "FjordController", "FjordBroker", "FjordClient",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // Operator tools shared by the CLI (dump-log, ...), testable without spawning processes.
        .target(name: "FjordTools",
                dependencies: ["FjordRecords", "FjordProtocol", "FjordMetadata", .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: strict),
        .executableTarget(name: "fjord",
                dependencies: ["FjordTools", "FjordServer", "FjordRaftRuntime", "FjordWire", "FjordClient",
                               .product(name: "ArgumentParser", package: "swift-argument-parser"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .executableTarget(name: "fjord-codegen",
                dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
                swiftSettings: strict),
        .executableTarget(name: "fjord-bench",
                dependencies: ["FjordRecords", "FjordProtocol", "FjordStorage", "FjordRaftRuntime", "FjordRaft",
                               .product(name: "NIOPosix", package: "swift-nio"), "CFjordZlib", "CFjordSnappy", "CFjordLZ4", "CFjordZstd",
                               .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: strict),

        // Decoder entry points for the libFuzzer harness in fuzz/ (built by scripts/fuzz).
        .target(name: "FjordFuzzTargets",
                dependencies: ["FjordProtocol", "FjordRecords", "FjordWire", .product(name: "NIOCore", package: "swift-nio")],
                swiftSettings: strict),
        // Helpers for tests only: running the real Python Kafka clients, temp dirs.
        .target(name: "FjordTestSupport", swiftSettings: strict),

        .testTarget(name: "FjordWireTests", dependencies: ["FjordWire"], swiftSettings: strict),
        .testTarget(name: "FjordProtocolTests",
                    dependencies: ["FjordProtocol", "FjordWire", "FjordTestSupport", .product(name: "NIOCore", package: "swift-nio"),
                                   .product(name: "NIOEmbedded", package: "swift-nio"),
                                   .product(name: "NIOTestUtils", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(name: "FjordRecordsTests", dependencies: ["FjordRecords", "FjordTestSupport"], swiftSettings: strict),
        .testTarget(name: "FjordStorageTests", dependencies: ["FjordStorage", "FjordTestSupport"], swiftSettings: strict),
        .testTarget(name: "FjordRaftTests", dependencies: ["FjordRaft", "FjordRecords", "FjordSimulation"], swiftSettings: strict),
        .testTarget(name: "FjordRaftRuntimeTests",
                    dependencies: ["FjordRaftRuntime", "FjordRaft", "FjordStorage", "FjordRecords", "FjordTestSupport",
                                   .product(name: "NIOPosix", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(name: "FjordServerTests",
                    dependencies: ["FjordServer", "FjordBroker", "FjordStorage", "FjordProtocol", "FjordTestSupport",
                                   .product(name: "NIOPosix", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(name: "FjordMetadataTests",
                    dependencies: ["FjordMetadata", "FjordProtocol", "FjordWire", .product(name: "NIOCore", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(name: "FjordControllerTests",
                    dependencies: ["FjordController", "FjordMetadata", "FjordProtocol", "FjordWire",
                                   .product(name: "NIOCore", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(name: "FjordToolsTests", dependencies: ["FjordTools", "FjordStorage", "FjordTestSupport"], swiftSettings: strict),
        .testTarget(name: "FjordClientTests",
                    dependencies: ["FjordClient", "FjordProtocol", "FjordRecords", "FjordTestSupport",
                                   .product(name: "NIOCore", package: "swift-nio")],
                    swiftSettings: strict),
        .testTarget(name: "FjordToolsCLITests", dependencies: ["FjordTestSupport"], swiftSettings: strict),
    ]
)
