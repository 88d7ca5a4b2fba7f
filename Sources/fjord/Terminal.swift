#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Buffered standard output and unbuffered standard error for the tools. Writing to the
/// error stream flushes the output first, so `2>&1` keeps lines in order.
final class Terminal {
    private var pending: [UInt8] = []
    private let limit = 1 << 16

    init() { pending.reserveCapacity(limit) }
    deinit { flush() }

    struct Output: TextOutputStream {
        let terminal: Terminal
        let isError: Bool
        mutating func write(_ string: String) {
            if isError {
                terminal.flush()
                var s = string
                s.withUTF8 { Terminal.writeAll(2, $0) }
            } else {
                terminal.append(string)
            }
        }
    }

    var standardOutput: Output { Output(terminal: self, isError: false) }
    var standardError: Output { Output(terminal: self, isError: true) }

    func append(_ string: String) {
        var s = string
        s.withUTF8 { pending.append(contentsOf: $0) }
        if pending.count >= limit { flush() }
    }

    func flush() {
        guard !pending.isEmpty else { return }
        pending.withUnsafeBufferPointer { Terminal.writeAll(1, $0) }
        pending.removeAll(keepingCapacity: true)
    }

    static func writeAll(_ fd: Int32, _ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = write(fd, base + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return  // closed pipe or similar: drop the output, as Java's System.out does
            }
            done += n
        }
    }
}
