import FjordProtocol
import FjordRaft
import FjordRecords
import FjordStorage
import NIOCore

/// A KRaft snapshot file (KIP-630), `%020d-%010d.checkpoint` in the metadata log's
/// directory: record batches like the log's — a control batch with a
/// `SnapshotHeaderRecord`, batches of metadata record values, a control batch with a
/// `SnapshotFooterRecord` — every batch stamped with the snapshot's epoch. A file without
/// its footer is incomplete and never read as a snapshot.
public enum SnapshotFile {
    /// Records per data batch.
    static let recordsPerBatch = 1000

    /// The file's bytes for `values` (each a record value) as of `id`.
    /// `control` records (KRaft version, voters) follow the header, one control batch each.
    public static func encode(_ values: [ByteBuffer], id: SnapshotId, lastContainedLogTimestamp: Int64,
                              control: [(ControlRecordType, ByteBuffer)] = []) throws -> ByteBuffer {
        var file = ByteBuffer()
        var header = SnapshotHeaderRecord()
        header.version = 0
        header.lastContainedLogTimestamp = lastContainedLogTimestamp
        var offset: Int64 = 0
        var h = try RecordBatchBuilder.controlBatch(type: .snapshotHeader, value: try header.encoded(version: 0), baseOffset: offset,
                                                    partitionLeaderEpoch: id.epoch, timestamp: lastContainedLogTimestamp).buffer
        file.writeBuffer(&h)
        offset += 1
        for (type, value) in control {
            var c = try RecordBatchBuilder.controlBatch(type: type, value: value, baseOffset: offset, partitionLeaderEpoch: id.epoch,
                                                        timestamp: lastContainedLogTimestamp).buffer
            file.writeBuffer(&c)
            offset += 1
        }
        var i = 0
        while i < values.count {
            var b = RecordBatchBuilder(baseOffset: offset, partitionLeaderEpoch: id.epoch)
            for v in values[i..<min(values.count, i + recordsPerBatch)] { b.append(key: nil, value: v, timestamp: lastContainedLogTimestamp) }
            var data = try b.build().buffer
            file.writeBuffer(&data)
            offset += Int64(min(values.count, i + recordsPerBatch) - i)
            i += recordsPerBatch
        }
        var footer = SnapshotFooterRecord()
        footer.version = 0
        var f = try RecordBatchBuilder.controlBatch(type: .snapshotFooter, value: try footer.encoded(version: 0), baseOffset: offset,
                                                    partitionLeaderEpoch: id.epoch, timestamp: lastContainedLogTimestamp).buffer
        file.writeBuffer(&f)
        return file
    }

    /// Checks a snapshot's bytes (every batch's CRC, the header first, the footer last) and
    /// returns its record values in order.
    public static func decode(_ bytes: ByteBuffer) throws -> [ByteBuffer] {
        var values: [ByteBuffer] = []
        var sawHeader = false
        var sawFooter = false
        for item in RecordBatchReader(bytes) {
            guard case let .batch(batch, _) = item else {
                throw StorageError("snapshot is truncated or corrupt after \(values.count) records")
            }
            try batch.validate()
            if sawFooter { throw StorageError("snapshot has batches after its footer") }
            if batch.isControl {
                for r in try batch.records() {
                    switch try r.controlRecordType() {
                    case .snapshotHeader:
                        guard !sawHeader, values.isEmpty else { throw StorageError("snapshot header is not first") }
                        sawHeader = true
                    case .snapshotFooter:
                        guard sawHeader else { throw StorageError("snapshot footer without a header") }
                        sawFooter = true
                    default:
                        break  // KRaft version / voters records: nothing to apply here
                    }
                }
                continue
            }
            guard sawHeader else { throw StorageError("snapshot does not start with a header") }
            for r in try batch.records() {
                if let v = r.value { values.append(v) }
            }
        }
        guard sawHeader, sawFooter else { throw StorageError("snapshot is incomplete (no \(sawHeader ? "footer" : "header"))") }
        return values
    }

    /// Writes `bytes` as snapshot `id` in `dir` durably (a `.part` file, fsync, rename, and a
    /// sync of the directory), so a crash leaves either no snapshot or the whole one.
    public static func write(_ bytes: ByteBuffer, id: SnapshotId, dir: String) throws {
        let path = dir + "/" + id.fileName
        let part = path + ".part"
        let f = try StorageFile(path: part, create: true)
        try f.truncate(to: 0)
        try f.write(bytes, at: 0)
        try f.sync()
        try FileSystem.rename(part, path)
        try FileSystem.syncDirectory(dir)
    }

    /// The complete snapshots in `dir`, oldest first (leftover `.part` files are removed).
    public static func list(dir: String) throws -> [SnapshotId] {
        var ids: [SnapshotId] = []
        for name in try FileSystem.list(dir) {
            if name.hasSuffix(".checkpoint.part") || name.hasSuffix(".checkpoint.deleted") {
                try FileSystem.remove(dir + "/" + name)
            } else if let id = SnapshotId(fileName: name) {
                ids.append(id)
            }
        }
        return ids.sorted()
    }
}
