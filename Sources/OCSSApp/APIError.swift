import OCSSCore
package import OCSSHTTP
package import OCSSEngine

/// An error answered to a client: HTTP status, stable code, message safe to show, optional field.
package struct APIError: Error, Sendable, Equatable {
    package var status: Int
    package var code: String
    package var message: String
    package var field: String?

    package init(_ status: Int, _ code: String, _ message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    /// The one error body on the wire: `{"error":{"code","message","field"}}`.
    package var body: JSON {
        var e: [(String, JSON)] = [("code", .string(code)), ("message", .string(message))]
        if let field { e.append(("field", .string(field))) }
        return .object([("error", .object(e))])
    }

    package var response: Response { jsonResponse(status, body) }

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

/// Intake's answers in HTTP: the one place they are mapped.
extension Result where Success == OrderReceipt, Failure == OrderRefusal {
    var response: Response {
        switch self {
        case .success(let r):
            var headers = [("Content-Type", "application/json"), ("Location", "/v1/orders/\(r.orderID)")]
            if r.replay { headers.append(("Idempotent-Replay", "true")) }
            return Response(status: 201, headers: headers, body: Array(r.answer.utf8))
        case .failure(let why):
            return why.apiError.response
        }
    }
}

extension OrderRefusal {
    /// A platform sending the same event again cannot change the outcome: the event is acknowledged.
    var retryCannotFix: Bool { self == .idempotencyConflict || self == .platformOrderCancelled }

    var apiError: APIError {
        switch self {
        case .invalidCoordinates(let message): .invalid("shipping.coordinates", message)
        case .idempotencyConflict:
            APIError(409, "idempotency_conflict", "idempotency_key was already used with a different body", field: "idempotency_key")
        case .platformOrderCancelled:
            APIError(
                409, "platform_order_cancelled", "the platform cancelled this order before ocss received it; nothing was routed",
                field: "platform_order_id")
        case .outsideServiceArea(let field):
            APIError(
                422, "outside_service_area", "no store or warehouse delivers to this location (service radius, area and reach of every location)",
                field: field)
        case .storageUnavailable: APIError(503, "storage_unavailable", "the order could not be stored; retry with the same idempotency key")
        }
    }
}

/// Workflow answers in HTTP: the one place they are mapped.
extension ActionOutcome {
    var response: Response {
        switch self {
        case .done(let state): Response(status: 200, headers: [("Content-Type", "application/json")], body: Array(state.utf8))
        case .refused(let why): why.response
        }
    }
}

extension ActionRefusal {
    var apiError: APIError {
        switch self {
        case .orderNotFound(let id): .notFound("order \(id)")
        case .illegalTransition(_, _, let message): APIError(409, "illegal_transition", message, field: "status")
        case .forbidden: .forbidden
        case .invalidField(let field, let message): .invalid(field, message)
        case .addressUnresolved(let message, _): APIError(422, "address_unresolved", message, field: "text")
        case .unreadableOrder: APIError(500, "corrupt_order", "the stored order could not be read")
        case .storageUnavailable: .storageUnavailable("the change")
        }
    }

    var response: Response {
        switch self {
        case .illegalTransition(let id, let status, _): return apiError.withState(orderID: id, status: status)
        case .addressUnresolved(let message, let candidates):
            var body: [(String, JSON)] = [("code", .string("address_unresolved")), ("message", .string(message)), ("field", .string("text"))]
            if !candidates.isEmpty {
                body.append(("candidates", .array(candidates.map { .object([("adcode", .string($0.adcode)), ("place", .string($0.place))]) })))
            }
            return jsonResponse(422, .object([("error", .object(body))]))
        default: return apiError.response
        }
    }
}

/// Routing an unroutable order again, in HTTP.
extension Engine.RouteAgainOutcome {
    /// The HTTP answer to `POST /v1/orders/{id}/route`.
    func response(orderID: Int64) -> Response {
        switch self {
        case .routed(let state):
            return Response(status: 200, headers: [("Content-Type", "application/json")], body: Array(state.utf8))
        case .stillUnroutable(let summary, let explanation):
            let error: JSON = .object([("code", .string("still_unroutable")), ("message", .string(summary)), ("field", .string("status"))])
            return jsonResponse(
                409,
                .object([
                    ("error", error), ("order_id", .int(orderID)),
                    ("current_status", .string(OrderStatus.unroutable.rawValue)), ("explanation", explanation),
                ]))
        case .notFound: return APIError.notFound("order \(orderID)").response
        case .illegalTransition(let status, let message):
            return APIError(409, "illegal_transition", message, field: "status").withState(orderID: orderID, status: status)
        case .noCustomerPoint(let status):
            return APIError(
                409, "no_customer_point", "the order has no point to route from; cancel it and have it sent again",
                field: "status"
            ).withState(orderID: orderID, status: status)
        case .unreadableOrder: return APIError(500, "corrupt_order", "the stored order could not be read").response
        case .storageUnavailable: return APIError.storageUnavailable().response
        }
    }
}

extension APIError {
    /// A 409 body that also carries the order's current state.
    func withState(orderID: Int64, status: String) -> Response {
        var e: [(String, JSON)] = [("code", .string(code)), ("message", .string(message))]
        if let field { e.append(("field", .string(field))) }
        return jsonResponse(self.status, .object([("error", .object(e)), ("order_id", .int(orderID)), ("current_status", .string(status))]))
    }
}

extension APIError {
    /// An administrative change that was not made; `subject` names what it was about ("customer 7", "the campaign").
    init(_ refusal: AdminRefusal, subject: String) {
        switch refusal {
        case .notFound: self = .notFound(subject)
        case .notDead: self = APIError(409, "not_dead", "\(subject) is not dead", field: "id")
        case .storageUnavailable: self = .storageUnavailable(subject)
        }
    }
}
