import ArgumentParser
import FjordTools

/// `fjord dump-log`: Kafka's `kafka-dump-log.sh`, same flags and output.
struct DumpLogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-log",
        abstract: "Parse a log file and dump its contents to the console, useful for debugging a seemingly corrupt log segment.",
        discussion: """
            Examples:
              fjord dump-log --files /tmp/fjord-logs/demo-0/00000000000000000000.log --print-data-log
              fjord dump-log --cluster-metadata-decoder --files /tmp/fjord-logs/__cluster_metadata-0/00000000000000000000.log
            """
    )

    @Option(name: .customLong("files"),
            help: "The comma separated list of data and index log files to be dumped (may be repeated).")
    var files: [String]

    @Flag(name: .customLong("print-data-log"),
          help: "If set, printing the messages content when dumping data logs. Automatically set if any decoder option is specified.")
    var printDataLog = false

    @Flag(name: .customLong("deep-iteration"),
          help: "If set, uses deep instead of shallow iteration. Automatically set if print-data-log is enabled.")
    var deepIteration = false

    @Flag(name: .customLong("skip-record-metadata"),
          help: "Whether to skip printing metadata for each record.")
    var skipRecordMetadata = false

    @Flag(name: .customLong("cluster-metadata-decoder"),
          help: "If set, log data will be parsed as cluster metadata records.")
    var clusterMetadataDecoder = false

    @Option(name: .customLong("max-bytes"),
            help: "Limit the amount of total batches read in bytes avoiding reading the whole .log file(s).")
    var maxBytes: Int?

    func validate() throws {
        if paths.isEmpty { throw ValidationError("Missing required argument \"[files]\"") }
        if let maxBytes, maxBytes <= 0 { throw ValidationError("--max-bytes must be positive") }
    }

    var paths: [String] {
        files.flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
    }

    func run() throws {
        var options = DumpLogOptions(files: paths, printDataLog: printDataLog || clusterMetadataDecoder, deepIteration: deepIteration,
                                     skipRecordMetadata: skipRecordMetadata, maxBytes: maxBytes)
        if clusterMetadataDecoder {
            options.decodePayload = ClusterMetadataDecoder.payload
            options.describeControlRecord = ClusterMetadataDecoder.control
        }
        let terminal = Terminal()
        var out = terminal.standardOutput
        var err = terminal.standardError
        let ok = DumpLog.run(options, output: &out, errors: &err)
        terminal.flush()
        if !ok { throw ExitCode.failure }
    }
}
