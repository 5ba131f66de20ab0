public import OCSSHTTP

/// An error answered to a client: HTTP status, stable code, message safe to show, optional field.
public struct APIError: Error, Sendable, Equatable {
    public var status: Int
    public var code: String
    public var message: String
    public var field: String?

    public init(_ status: Int, _ code: String, _ message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    /// The one error body on the wire: `{"error":{"code","message","field"}}`.
    public var body: JSON {
        var e: [(String, JSON)] = [("code", .string(code)), ("message", .string(message))]
        if let field { e.append(("field", .string(field))) }
        return .object([("error", .object(e))])
    }

    public var response: Response { jsonResponse(status, body) }

    static func invalid(_ field: String, _ message: String) -> APIError { APIError(400, "invalid_field", message, field: field) }
    /// A write could not be made durable; nothing changed, and the same request may be retried.
    static func storageUnavailable(_ what: String = "the change") -> APIError {
        APIError(503, "storage_unavailable", "\(what) could not be stored; retry")
    }
    static let unauthorized = APIError(401, "unauthorized", "missing or invalid bearer token", field: "Authorization")
    static let forbidden = APIError(403, "forbidden", "this token may not access this resource")
    static func notFound(_ what: String) -> APIError { APIError(404, "not_found", "\(what) not found") }
}

func jsonResponse(_ status: Int, _ body: JSON, headers: [(String, String)] = []) -> Response {
    Response(status: status, headers: [("Content-Type", "application/json")] + headers, body: body.bytes)
}
