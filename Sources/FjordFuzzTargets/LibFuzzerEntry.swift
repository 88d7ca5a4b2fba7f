/// libFuzzer's entry point. Linked into a fuzzer binary only by scripts/fuzz (with
/// `-sanitize=fuzzer`, which supplies `main`); in ordinary builds nothing calls it.
/// The first byte chooses the target: odd → record batches, even → frames and requests.
@_cdecl("LLVMFuzzerTestOneInput")
public func fjordFuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard size > 0 else { return 0 }
    let rest = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
    if data[0] & 1 == 1 {
        FuzzTargets.recordBatches(rest)
    } else {
        FuzzTargets.frameAndRequest(rest)
    }
    return 0
}
