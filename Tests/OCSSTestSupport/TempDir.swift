import Foundation

/// A fresh directory under the system temp dir, removed by `remove()`.
public struct TempDir: Sendable {
    public let path: String

    public init(_ label: String = "ocss") {
        path = NSTemporaryDirectory() + "/\(label)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}
