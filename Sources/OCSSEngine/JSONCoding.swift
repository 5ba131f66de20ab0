import FoundationEssentials

/// Foundation's JSON decoder behind one function, so handlers do not import Foundation.
package enum JSONCoding {
    package static func decode<T: Decodable>(_ t: T.Type, _ body: [UInt8]) throws -> T {
        try JSONDecoder().decode(t, from: Data(body))
    }
}
