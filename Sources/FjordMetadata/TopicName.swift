/// Kafka's rules for topic names (`org.apache.kafka.common.internals.Topic`).
public enum TopicName {
    /// The longest legal topic name.
    public static let maxLength = 249

    /// Kafka's internal topics.
    public static let internalTopics: Set<String> = ["__consumer_offsets", "__transaction_state"]

    /// Why `name` is not a legal topic name (Kafka's message), or nil if it is.
    public static func validationError(_ name: String) -> String? {
        if name.isEmpty { return "Topic name is illegal, it can't be empty" }
        if name == "." || name == ".." { return "Topic name cannot be \".\" or \"..\"" }
        if name.utf8.count > maxLength {
            return "Topic name is illegal, it can't be longer than \(maxLength) characters, topic name: \(name)"
        }
        for c in name.utf8 {
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                continue
            default:
                return "Topic name \"\(name)\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
            }
        }
        return nil
    }

    /// The name with '.' replaced by '_': two topics whose keys are equal collide in metric
    /// names, so Kafka refuses the second.
    public static func collisionKey(_ name: String) -> String {
        String(decoding: name.utf8.map { $0 == UInt8(ascii: ".") ? UInt8(ascii: "_") : $0 }, as: UTF8.self)
    }
}
