import Foundation
import SwiftProtobuf

/// A message as the Fleet API moves it: its id, the tree of object ids (children first when pulled)
/// and the objects' bytes by id.
struct DeflatedMessage: Sendable {
    var messageID: String
    var tree: FlowerProtoObjectTree
    /// Every object of the tree, in the order a push should send them (children before parents).
    var objects: [(id: String, bytes: Data)]

    var byID: [String: Data] { Dictionary(objects.map { ($0.id, $0.bytes) }, uniquingKeysWith: { a, _ in a }) }
}

/// Turns messages into Flower's object trees and back, byte-compatible with `flwr`'s `deflate`/`inflate`.
public enum FlowerMessageCodec {
    /// The objects a SuperLink would store for a message of `type` with `content` (its id first):
    /// for fuzz seeds and tests of code that reads them.
    public static func objects(type: String, content: FlowerRecordDict) throws -> (messageID: String, objects: [(id: String, bytes: Data)]) {
        let d = try deflate(metadata: .with { $0.messageType = type; $0.runID = 1; $0.dstNodeID = 2; $0.ttl = 60 }, content: content)
        return (d.messageID, d.objects.filter { $0.id == d.messageID } + d.objects.filter { $0.id != d.messageID })
    }

    /// What a node does with pulled objects: each checked against its id, then the message rebuilt.
    /// Returns the message type and its content (nil for an error message).
    public static func inflate(messageID: String, objectBytes: [String: Data]) throws -> (type: String, content: FlowerRecordDict?) {
        var objects: [String: FlowerObject] = [:]
        for (id, bytes) in objectBytes { objects[id] = try FlowerObject.parse(bytes, expectedID: id) }
        let m = try inflate(messageID: messageID, objects: objects)
        return (m.metadata.messageType, m.content)
    }

    /// Deflates a message: `metadata.messageID` is ignored (the id is the hash of the Message object,
    /// which is written with an empty id); exactly one of `content` and `error` is set.
    static func deflate(metadata: FlowerProtoMetadata, content: FlowerRecordDict?, error: FlowerProtoError? = nil) throws -> DeflatedMessage {
        var objects: [(id: String, bytes: Data)] = []
        func store(_ o: FlowerObject) -> String {
            let bytes = o.encoded
            let id = FlowerObject.id(of: bytes)
            objects.append((id, bytes))
            return id
        }
        var md = metadata
        md.messageID = ""
        var body = FlowerProtoMessage()
        body.metadata = md
        if let error { body.error = error }
        var children: [FlowerProtoObjectTree] = []
        var childIDs: [String] = []
        if let content {
            let (id, tree) = try deflate(content, store: store)
            childIDs = [id]
            children = [tree]
        }
        let messageID = store(FlowerObject(type: "Message", children: childIDs, body: try body.serializedData()))
        var tree = FlowerProtoObjectTree()
        tree.objectID = messageID
        tree.children = children
        return DeflatedMessage(messageID: messageID, tree: tree, objects: objects)
    }

    static func leaf(_ id: String, _ children: [FlowerProtoObjectTree] = []) -> FlowerProtoObjectTree {
        var t = FlowerProtoObjectTree()
        t.objectID = id
        t.children = children
        return t
    }

    /// Unique ids in first-seen order, with their trees (a repeated child appears once in a header).
    static func unique(_ items: [(String, FlowerProtoObjectTree)]) -> (ids: [String], trees: [FlowerProtoObjectTree]) {
        var seen = Set<String>()
        var ids: [String] = []
        var trees: [FlowerProtoObjectTree] = []
        for (id, t) in items where seen.insert(id).inserted {
            ids.append(id)
            trees.append(t)
        }
        return (ids, trees)
    }

    static func deflate(_ content: FlowerRecordDict, store: (FlowerObject) -> String) throws -> (String, FlowerProtoObjectTree) {
        var refs: [(String, PythonJSON)] = []
        var records: [(String, FlowerProtoObjectTree)] = []
        for entry in content.records {
            let (id, tree) = try deflate(entry.value, store: store)
            refs.append((entry.key, .string(id)))
            records.append((id, tree))
        }
        let (ids, trees) = unique(records)
        let id = store(FlowerObject(type: "RecordDict", children: ids, body: PythonJSON.object(refs).encoded))
        return (id, leaf(id, trees))
    }

    static func deflate(_ record: FlowerRecord, store: (FlowerObject) -> String) throws -> (String, FlowerProtoObjectTree) {
        switch record {
        case .arrays(let arrays):
            var refs: [(String, PythonJSON)] = []
            var items: [(String, FlowerProtoObjectTree)] = []
            for entry in arrays {
                let data = entry.value.encoded()
                var chunkIDs: [String] = []
                var start = 0
                repeat {
                    let end = min(start + FlowerObject.chunkSize, data.count)
                    chunkIDs.append(store(FlowerObject(type: "ArrayChunk", children: [], body: data.subdata(in: start..<end))))
                    start = end
                } while start < data.count
                let (unique, chunkTrees) = unique(chunkIDs.map { ($0, leaf($0)) })
                let meta = PythonJSON.object([
                    ("dtype", .string("float32")), ("shape", .array(entry.value.shape.map { .int($0) })), ("stype", .string("numpy.ndarray")),
                    ("arraychunk_ids", .array(chunkIDs.map { .int(unique.firstIndex(of: $0)!) })),
                ])
                let id = store(FlowerObject(type: "Array", children: unique, body: meta.encoded))
                refs.append((entry.key, .string(id)))
                items.append((id, leaf(id, chunkTrees)))
            }
            let (ids, trees) = unique(items)
            let id = store(FlowerObject(type: "ArrayRecord", children: ids, body: PythonJSON.object(refs).encoded))
            return (id, leaf(id, trees))
        case .metrics(let entries):
            var proto = FlowerProtoMetricRecord()
            proto.items = try entries.map { e in
                var item = FlowerProtoMetricRecord.Item()
                item.key = e.key
                item.value = try metricValue(e.value, key: e.key)
                return item
            }
            let id = store(FlowerObject(type: "MetricRecord", children: [], body: try proto.serializedData()))
            return (id, leaf(id))
        case .config(let entries):
            var proto = FlowerProtoConfigRecord()
            proto.items = entries.map { e in
                var item = FlowerProtoConfigRecord.Item()
                item.key = e.key
                item.value = configValue(e.value)
                return item
            }
            let id = store(FlowerObject(type: "ConfigRecord", children: [], body: try proto.serializedData()))
            return (id, leaf(id))
        }
    }

    static func metricValue(_ v: FlowerValue, key: String) throws(FlowerError) -> FlowerProtoMetricRecordValue {
        var p = FlowerProtoMetricRecordValue()
        switch v {
        case .double(let x): p.double = x
        case .sint(let x): p.sint64 = x
        case .uint(let x): p.uint64 = x
        case .doubles(let x): p.doubleList = .with { $0.vals = x }
        case .sints(let x): p.sintList = .with { $0.vals = x }
        case .uints(let x): p.uintList = .with { $0.vals = x }
        default: throw .message("metric '\(key)' must be a number or a list of numbers")
        }
        return p
    }

    static func configValue(_ v: FlowerValue) -> FlowerProtoConfigRecordValue {
        var p = FlowerProtoConfigRecordValue()
        switch v {
        case .double(let x): p.double = x
        case .sint(let x): p.sint64 = x
        case .uint(let x): p.uint64 = x
        case .bool(let x): p.bool = x
        case .string(let x): p.string = x
        case .bytes(let x): p.bytes = x
        case .doubles(let x): p.doubleList = .with { $0.vals = x }
        case .sints(let x): p.sintList = .with { $0.vals = x }
        case .uints(let x): p.uintList = .with { $0.vals = x }
        case .bools(let x): p.boolList = .with { $0.vals = x }
        case .strings(let x): p.stringList = .with { $0.vals = x }
        case .bytesList(let x): p.bytesList = .with { $0.vals = x }
        }
        return p
    }

    static func value(_ p: FlowerProtoConfigRecordValue) -> FlowerValue? {
        switch p.value {
        case .double(let x)?: .double(x)
        case .sint64(let x)?: .sint(x)
        case .uint64(let x)?: .uint(x)
        case .bool(let x)?: .bool(x)
        case .string(let x)?: .string(x)
        case .bytes(let x)?: .bytes(x)
        case .doubleList(let x)?: .doubles(x.vals)
        case .sintList(let x)?: .sints(x.vals)
        case .uintList(let x)?: .uints(x.vals)
        case .boolList(let x)?: .bools(x.vals)
        case .stringList(let x)?: .strings(x.vals)
        case .bytesList(let x)?: .bytesList(x.vals)
        case nil: nil
        }
    }

    static func value(_ p: FlowerProtoMetricRecordValue) -> FlowerValue? {
        switch p.value {
        case .double(let x)?: .double(x)
        case .sint64(let x)?: .sint(x)
        case .uint64(let x)?: .uint(x)
        case .doubleList(let x)?: .doubles(x.vals)
        case .sintList(let x)?: .sints(x.vals)
        case .uintList(let x)?: .uints(x.vals)
        case nil: nil
        }
    }

    // MARK: Inflating

    /// An inflated message: metadata, and content or error.
    struct Inflated: Sendable {
        var metadata: FlowerProtoMetadata
        var content: FlowerRecordDict?
        var error: FlowerProtoError?
    }

    /// Rebuilds the message `messageID` from objects already checked against their ids.
    static func inflate(messageID: String, objects: [String: FlowerObject]) throws -> Inflated {
        func object(_ id: String, _ type: String) throws(FlowerError) -> FlowerObject {
            guard let o = objects[id] else { throw .object(id: id, "missing from the pulled tree") }
            guard o.type == type else { throw .object(id: id, "is a \(o.type), expected a \(type)") }
            return o
        }
        func refs(_ o: FlowerObject, _ id: String) throws(FlowerError) -> [(String, String)] {
            guard case .object(let items) = try PythonJSON.parse(o.body) else { throw .object(id: id, "body is not a JSON object") }
            var out: [(String, String)] = []
            for (k, v) in items {
                guard case .string(let child) = v, o.children.contains(child) else { throw .object(id: id, "'\(k)' does not name one of its children") }
                out.append((k, child))
            }
            return out
        }
        let m = try object(messageID, "Message")
        let proto: FlowerProtoMessage
        do { proto = try FlowerProtoMessage(serializedBytes: m.body) } catch { throw FlowerError.object(id: messageID, "Message body is not a protobuf Message: \(error)") }
        var metadata = proto.metadata
        metadata.messageID = messageID
        guard let contentID = m.children.first else {
            return Inflated(metadata: metadata, content: nil, error: proto.hasError ? proto.error : FlowerProtoError.with { $0.code = 0; $0.reason = "no content" })
        }
        guard m.children.count == 1 else { throw FlowerError.object(id: messageID, "a Message has one child, this one \(m.children.count)") }
        var content = FlowerRecordDict()
        let rd = try object(contentID, "RecordDict")
        for (name, recordID) in try refs(rd, contentID) {
            guard let r = objects[recordID] else { throw FlowerError.object(id: recordID, "missing from the pulled tree") }
            switch r.type {
            case "ArrayRecord":
                var arrays: [FlowerEntry<NumpyArray>] = []
                for (arrayName, arrayID) in try refs(r, recordID) {
                    arrays.append(FlowerEntry(arrayName, try inflateArray(try object(arrayID, "Array"), id: arrayID, objects: objects)))
                }
                content.records.append(FlowerEntry(name, .arrays(arrays)))
            case "MetricRecord":
                let p: FlowerProtoMetricRecord
                do { p = try FlowerProtoMetricRecord(serializedBytes: r.body) } catch { throw FlowerError.object(id: recordID, "unreadable MetricRecord: \(error)") }
                content.records.append(FlowerEntry(name, .metrics(try p.items.map { i throws(FlowerError) in
                    guard let v = value(i.value) else { throw .object(id: recordID, "metric '\(i.key)' has no value") }
                    return FlowerEntry(i.key, v)
                })))
            case "ConfigRecord":
                let p: FlowerProtoConfigRecord
                do { p = try FlowerProtoConfigRecord(serializedBytes: r.body) } catch { throw FlowerError.object(id: recordID, "unreadable ConfigRecord: \(error)") }
                content.records.append(FlowerEntry(name, .config(try p.items.map { i throws(FlowerError) in
                    guard let v = value(i.value) else { throw .object(id: recordID, "config '\(i.key)' has no value") }
                    return FlowerEntry(i.key, v)
                })))
            default:
                throw FlowerError.object(id: recordID, "record type \(r.type) is not ArrayRecord, MetricRecord or ConfigRecord")
            }
        }
        return Inflated(metadata: metadata, content: content, error: nil)
    }

    static func inflateArray(_ a: FlowerObject, id: String, objects: [String: FlowerObject]) throws(FlowerError) -> NumpyArray {
        guard case .object(let items) = try PythonJSON.parse(a.body) else { throw .object(id: id, "Array body is not a JSON object") }
        let meta = Dictionary(items, uniquingKeysWith: { x, _ in x })
        guard meta["stype"] == .string("numpy.ndarray") else { throw .object(id: id, "array stype \(meta["stype"].map { "\($0)" } ?? "missing") is not numpy.ndarray") }
        guard case .array(let indices)? = meta["arraychunk_ids"], case .array(let shapeJSON)? = meta["shape"] else {
            throw .object(id: id, "array metadata lacks shape or arraychunk_ids")
        }
        var data = Data()
        for index in indices {
            guard case .int(let k) = index, a.children.indices.contains(k), let chunk = objects[a.children[k]], chunk.type == "ArrayChunk" else {
                throw .object(id: id, "chunk index \(index) does not name an ArrayChunk child")
            }
            guard data.count + chunk.body.count <= FlowerObject.maxBytes * 16 else { throw .object(id: id, "array data exceeds the size limit") }
            data.append(chunk.body)
        }
        let array = try NumpyArray.decode(data)
        let shape = shapeJSON.compactMap { if case .int(let n) = $0 { n } else { nil } }
        guard shape == array.shape else { throw .object(id: id, "metadata shape \(shape) differs from the .npy shape \(array.shape)") }
        return array
    }
}
