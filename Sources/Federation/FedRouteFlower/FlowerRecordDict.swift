import Foundation

/// A value of a Flower `MetricRecord` or `ConfigRecord` (Python int → `sint`, float → `double`).
public enum FlowerValue: Sendable, Equatable {
    case double(Double), sint(Int64), uint(UInt64), bool(Bool), string(String), bytes(Data)
    case doubles([Double]), sints([Int64]), uints([UInt64]), bools([Bool]), strings([String]), bytesList([Data])

    /// An integer of either signedness, if it fits in `Int`.
    public var int: Int? {
        switch self {
        case .sint(let v): Int(exactly: v)
        case .uint(let v): Int(exactly: v)
        default: nil
        }
    }

    /// A number of any kind as a Double.
    public var number: Double? {
        switch self {
        case .double(let v): v
        case .sint(let v): Double(v)
        case .uint(let v): Double(v)
        default: nil
        }
    }
}

/// A named entry; records keep their insertion order, which is part of their object id.
public struct FlowerEntry<Value: Sendable & Equatable>: Sendable, Equatable {
    public var key: String
    public var value: Value

    public init(_ key: String, _ value: Value) {
        self.key = key
        self.value = value
    }
}

/// One record of a RecordDict.
public enum FlowerRecord: Sendable, Equatable {
    case arrays([FlowerEntry<NumpyArray>])
    case metrics([FlowerEntry<FlowerValue>])
    case config([FlowerEntry<FlowerValue>])

    var typeName: String {
        switch self {
        case .arrays: "ArrayRecord"
        case .metrics: "MetricRecord"
        case .config: "ConfigRecord"
        }
    }
}

/// A message's content: named records in order (Flower's `RecordDict`).
public struct FlowerRecordDict: Sendable, Equatable {
    public var records: [FlowerEntry<FlowerRecord>]

    public init(_ records: [FlowerEntry<FlowerRecord>] = []) { self.records = records }

    public subscript(_ key: String) -> FlowerRecord? { records.first { $0.key == key }?.value }

    /// The ArrayRecord under `key`, or an error naming what is there instead.
    public func arrays(_ key: String) throws(FlowerError) -> [FlowerEntry<NumpyArray>] {
        guard case .arrays(let a)? = self[key] else { throw .message("no ArrayRecord '\(key)' in the content (records: \(records.map(\.key)))") }
        return a
    }

    /// The ConfigRecord under `key` (empty when absent).
    public func config(_ key: String) throws(FlowerError) -> [FlowerEntry<FlowerValue>] {
        switch self[key] {
        case nil: return []
        case .config(let c)?: return c
        default: throw .message("'\(key)' is not a ConfigRecord")
        }
    }
}

extension Array {
    /// The value of the entry named `key` in a record.
    public func value<V>(_ key: String) -> V? where Element == FlowerEntry<V> { first { $0.key == key }?.value }
}
