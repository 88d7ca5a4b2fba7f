import FjordMetadata

/// What a controller operation produced: the records to append to the metadata log (in
/// order, as one batch) and the response to send once they are committed. The controller
/// has already replayed the records into its image when it returns this.
public struct ControllerResult<Response: Sendable>: Sendable {
    public var records: [MetadataRecord]
    public var response: Response

    public init(records: [MetadataRecord], response: Response) {
        self.records = records
        self.response = response
    }
}
