import Foundation

/// Runs Python with the real Kafka client libraries (kafka-python, confluent-kafka, ...)
/// installed by `scripts/setup` into `.venv`. Tests use it to check Fjord against an
/// independent implementation.
public enum TestPython {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The interpreter: `$FJORD_PYTHON`, else `<package root>/.venv/bin/python`.
    public static func interpreter() throws -> String {
        if let p = ProcessInfo.processInfo.environment["FJORD_PYTHON"], FileManager.default.isExecutableFile(atPath: p) {
            return p
        }
        let candidate = packageRoot() + "/.venv/bin/python"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        throw Failure(description: "no Python with the Kafka clients: run scripts/setup (creates .venv) or set FJORD_PYTHON")
    }

    /// The package root, found from this source file's location.
    public static func packageRoot(file: String = #filePath) -> String {
        var url = URL(fileURLWithPath: file)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url.path
            }
        }
        return FileManager.default.currentDirectoryPath
    }

    /// Runs `script` with `args`, feeding `stdin`; returns stdout. Throws with stderr on a
    /// non-zero exit. Bounded by `timeout` seconds.
    @discardableResult
    public static func run(_ script: String, args: [String] = [], stdin: [UInt8] = [], timeout: TimeInterval = 120) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try interpreter())
        p.arguments = ["-c", script] + args
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = errPipe
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        let writer = Thread {
            inPipe.fileHandleForWriting.write(Data(stdin))
            try? inPipe.fileHandleForWriting.close()
        }
        writer.start()
        final class Box: @unchecked Sendable { var out = Data(); var err = Data() }
        let box = Box()
        let g = DispatchGroup()
        g.enter(); DispatchQueue.global().async { box.out = outPipe.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        g.enter(); DispatchQueue.global().async { box.err = errPipe.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            p.terminate()
            throw Failure(description: "python timed out after \(timeout)s")
        }
        g.wait()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failure(description: "python exited \(p.terminationStatus): \(String(decoding: box.err, as: UTF8.self))")
        }
        return [UInt8](box.out)
    }

    /// A fresh temporary directory, removed by the caller.
    public static func temporaryDirectory(_ prefix: String = "fjord-test") throws -> String {
        let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
