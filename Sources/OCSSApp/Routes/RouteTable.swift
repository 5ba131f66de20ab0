import OCSSHTTP
import OCSSEngine

/// Who may call a route. Checked by the router before the handler runs, so a handler never starts with an auth call.
enum Access: Sendable, Equatable {
    /// Anyone (health, metrics, the API description, the login pages, platform webhooks: those check their own
    /// signatures, and a connector-forwarded delivery the admin token).
    case open
    /// The admin token.
    case admin
    /// Any valid token, admin or a store's; the handler gets the principal.
    case token
    /// The admin token, or the token of the store the path parameter names; the handler gets that store's slot.
    case store(param: String)
    /// A paired store device: the store token in its `ocss_store` cookie (the store app's pages); the handler gets
    /// that store's slot. A page without one is sent to `/login`.
    case storeDevice
}

/// What the router hands a handler besides the request: the path parameters by name, and who is calling.
struct RouteContext: Sendable {
    var params: [String: String]
    /// Resolved for `.token` and `.store` routes.
    var principal: Principal?
    /// Resolved for `.store` routes: the slot of the store the path names.
    var storeSlot: Int32?

    /// A path parameter the route's template names (`{id}` is `self["id"]`).
    subscript(_ name: String) -> String { params[name] ?? "" }
}

/// One route: declared once, and everything else (dispatch, auth, the metrics label, the `Allow` list of a 405, the
/// check against docs/openapi.yaml) comes from it.
struct Route: Sendable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    typealias Handler = @Sendable (App) -> (Request, RouteContext, ReplyCounter) throws -> Void

    let method: String
    /// `/v1/stores/{id}/inventory`: also the metrics label.
    let template: String
    let segments: [Segment]
    let access: Access
    let handler: Handler
    /// Served only when the app's bench endpoints are on.
    let benchOnly: Bool
    /// An HTML page for people (the dashboard and its sign-in), not part of the JSON API in docs/openapi.yaml.
    let page: Bool

    init(_ method: String, _ template: String, _ access: Access, benchOnly: Bool = false, page: Bool = false, _ handler: @escaping Handler) {
        self.page = page
        self.method = method
        self.template = template
        segments = template.split(separator: "/").map { s in
            s.hasPrefix("{") && s.hasSuffix("}") ? .parameter(String(s.dropFirst().dropLast())) : .literal(String(s))
        }
        self.access = access
        self.handler = handler
        self.benchOnly = benchOnly
    }

    /// The path parameters when `path` fits the template.
    func match(_ path: [String]) -> [String: String]? {
        guard path.count == segments.count else { return nil }
        // Literals first: a route that does not fit costs no allocation (a poll walks past a dozen of its length).
        for (segment, part) in zip(segments, path) {
            if case .literal(let l) = segment, l != part { return nil }
        }
        var params: [String: String] = [:]
        for (segment, part) in zip(segments, path) {
            if case .parameter(let name) = segment { params[name] = part }
        }
        return params
    }
}

/// The routes, grouped by path length so a request compares against the few of its own length.
struct RouteTable: Sendable {
    let routes: [Route]
    private let byLength: [Int: [Route]]

    init(_ routes: [Route]) {
        self.routes = routes
        byLength = Dictionary(grouping: routes, by: \.segments.count)
    }

    enum Match {
        case found(Route, [String: String])
        /// The path exists under other methods.
        case methodNotAllowed(allowed: [String])
        case notFound
    }

    func match(_ method: String, _ path: [String], benchEndpoints: Bool) -> Match {
        var allowed: [String] = []
        for route in byLength[path.count] ?? [] where benchEndpoints || !route.benchOnly {
            guard let params = route.match(path) else { continue }
            if route.method == method { return .found(route, params) }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed: allowed.sorted())
    }
}
