import FjordProtocol
import FjordRaft
import FjordRecords
import NIOCore
import XCTest

/// Every core message goes through the real KRaft RPC bytes (generated from Kafka's schemas)
/// and comes back unchanged.
final class RaftWireTests: XCTestCase {
    func roundTripRequest(_ m: RaftMessage) throws -> RaftMessage {
        let (req, version) = try RaftWire.request(m, to: 2, clusterId: "MkU3OEVBNTcwNTJENDM2Qk")
        var frame = try encodeRequest(req, version: version)
        let parsed = try RequestFrame(parsing: frame.readSlice(length: frame.readableBytes)!)
        XCTAssertEqual(parsed.apiVersion, version)
        return try RaftWire.message(fromRequest: parsed.decodeBody())
    }

    private func encodeRequest<R: KafkaRequest>(_ r: R, version: Int16) throws -> ByteBuffer {
        try KafkaFrames.request(r, version: version, correlationId: 7, clientId: "raft-client-1")
    }

    private func roundTripResponse(_ m: RaftMessage, request: RaftMessage) throws -> RaftMessage {
        let resp = try RaftWire.response(m)
        let version: Int16
        switch request {
        case .vote: version = RaftWire.voteVersion
        case .fetch: version = RaftWire.fetchVersion
        case .beginQuorumEpoch: version = RaftWire.beginQuorumEpochVersion
        default: version = RaftWire.endQuorumEpochVersion
        }
        var bytes = try resp.encoded(version: version)
        let decoded = try type(of: resp).init(from: &bytes, version: version)
        XCTAssertEqual(bytes.readableBytes, 0)
        return try RaftWire.message(fromResponse: decoded, request: request)
    }

    func testRequestsRoundTrip() throws {
        let msgs: [RaftMessage] = [
            .vote(VoteRequestData(candidateEpoch: 7, candidateId: 3, lastOffsetEpoch: 6, lastOffset: 1234, preVote: true)),
            .vote(VoteRequestData(candidateEpoch: 8, candidateId: 1, lastOffsetEpoch: 6, lastOffset: 99, preVote: false)),
            .beginQuorumEpoch(EpochData(leaderId: 2, leaderEpoch: 9)),
            .endQuorumEpoch(EndQuorumEpochData(leaderId: 2, leaderEpoch: 9, preferredSuccessors: [3, 1])),
            .fetch(FetchRequestData(currentLeaderEpoch: 9, fetchOffset: 4096, lastFetchedEpoch: 8, replicaId: 3, maxWaitMs: 500, maxBytes: 8 << 20)),
        ]
        for m in msgs { XCTAssertEqual(try roundTripRequest(m), m) }
    }

    func testResponsesRoundTrip() throws {
        let vote = RaftMessage.vote(VoteRequestData(candidateEpoch: 7, candidateId: 3, lastOffsetEpoch: 6, lastOffset: 12, preVote: true))
        let voteResp = RaftMessage.voteResponse(VoteResponseData(leaderEpoch: 6, leaderId: 2, voteGranted: true, requestEpoch: 7, preVote: true))
        XCTAssertEqual(try roundTripResponse(voteResp, request: vote), voteResp)

        let fetch = RaftMessage.fetch(FetchRequestData(currentLeaderEpoch: 9, fetchOffset: 10, lastFetchedEpoch: 8, replicaId: 3, maxWaitMs: 0, maxBytes: 1 << 20))
        var b = RecordBatchBuilder(baseOffset: 10, partitionLeaderEpoch: 9)
        b.append(key: nil, value: ByteBuffer(string: "metadata"), timestamp: 1)
        let records = try b.build().buffer
        let fetchResp = RaftMessage.fetchResponse(FetchResponseData(leaderId: 1, leaderEpoch: 9, highWatermark: 11, logStartOffset: 0,
                                                                    records: records, fetchOffset: 10))
        XCTAssertEqual(try roundTripResponse(fetchResp, request: fetch), fetchResp)
        let diverging = RaftMessage.fetchResponse(FetchResponseData(leaderId: 1, leaderEpoch: 9, highWatermark: 5, logStartOffset: 0,
                                                                    divergingEpoch: 7, divergingEndOffset: 8, fetchOffset: 10))
        XCTAssertEqual(try roundTripResponse(diverging, request: fetch), diverging)

        let begin = RaftMessage.beginQuorumEpoch(EpochData(leaderId: 2, leaderEpoch: 9))
        let beginResp = RaftMessage.beginQuorumEpochResponse(EpochResponseData(errorCode: 0, leaderId: 2, leaderEpoch: 9))
        XCTAssertEqual(try roundTripResponse(beginResp, request: begin), beginResp)
    }
}
