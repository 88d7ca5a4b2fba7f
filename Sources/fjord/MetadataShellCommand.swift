import ArgumentParser
import FjordTools

#if canImport(Glibc)
import Glibc
#endif

/// `fjord metadata-shell`: Kafka's `kafka-metadata-shell.sh --snapshot F [command]`.
struct MetadataShellCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata-shell",
        abstract: "Browse a KRaft metadata snapshot as a file tree.",
        discussion: """
            Loads a snapshot of the metadata log (a %020d-%010d.checkpoint file in the
            metadata log directory's __cluster_metadata-0) and shows the cluster metadata as
            a tree: /image/features, /image/cluster/brokers/<id>, /image/topics/byName/<topic>/<partition>,
            /image/configs/<TYPE>/<name>/<key>, /image/producerIds, /image/provenance.
            With a command it runs that command and exits; without one it reads commands
            from standard input (ls, cd, pwd, cat, tree, find, help, exit).

            Examples:
              fjord metadata-shell --snapshot /tmp/kraft-combined-logs/__cluster_metadata-0/00000000000000000042-0000000001.checkpoint ls /image/topics/byName
              fjord metadata-shell --snapshot F cat /image/topics/byName/orders/0
              fjord metadata-shell --snapshot F tree /image/cluster
            """
    )

    @Option(name: .customLong("snapshot"), help: "The metadata snapshot file to read.")
    var snapshot: String

    @Argument(parsing: .captureForPassthrough, help: "A command to run instead of the interactive shell.")
    var command: [String] = []

    func run() throws {
        let loaded: MetadataShell.Snapshot
        do {
            loaded = try MetadataShell.loadSnapshot(path: snapshot)
        } catch {
            var err = Terminal().standardError
            print("Error loading \(snapshot): \(error)", to: &err)
            throw ExitCode.failure
        }
        var shell = MetadataShell(snapshot: loaded)
        let terminal = Terminal()
        var out = terminal.standardOutput
        if !command.isEmpty {
            let (lines, _) = shell.run(command.joined(separator: " "))
            for l in lines { print(l, to: &out) }
            terminal.flush()
            return
        }
        let interactive = isatty(0) != 0
        while true {
            if interactive {
                print(">> ", terminator: "", to: &out)
                terminal.flush()
            }
            guard let line = readLine() else { break }
            let (lines, exit) = shell.run(line)
            for l in lines { print(l, to: &out) }
            terminal.flush()
            if exit { break }
        }
        terminal.flush()
    }
}
