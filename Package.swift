// swift-tools-version:6.1
import PackageDescription

// ocss: one executable, a pure core, one thin adapter per C library (see ARCHITECTURE.md in shared/).
// No `.package` dependencies: C libraries come from Debian as system library targets.

let package = Package(
    name: "ocss",
    products: [
        .executable(name: "ocss", targets: ["ocss"]),
        .executable(name: "ocss-bench", targets: ["ocss-bench"]),
    ],
    targets: [
        // C libraries (module map + shim.h, nothing else).
        .systemLibrary(name: "CProj", pkgConfig: "proj", providers: [.apt(["libproj-dev", "proj-data"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CHTTP", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),

        // Pure domain: no Foundation, no Glibc, no C.
        // Links libm for the standard library's rounding and sqrt; imports nothing.
        .target(name: "OCSSCore", linkerSettings: [.linkedLibrary("m")]),

        // Adapters: each imports exactly one C module.
        .target(name: "OCSSProj", dependencies: ["OCSSCore", "CProj"]),
        .target(name: "OCSSStore", dependencies: ["OCSSCore", "CSQLite", "OCSSPostgres"]),
        .target(name: "OCSSPlatforms", dependencies: ["OCSSCore", "CCrypto"]),
        .target(name: "OCSSHTTP", dependencies: ["CHTTP"]),
        // PostgreSQL through libpq: the multi-node storage engine's connection, leader lease and notifications
        // (issue 20; `ocss migrate` uses it, the service not yet).
        .target(name: "OCSSPostgres", dependencies: ["OCSSCore", "CPostgres"]),

        // The engine: decides and completes with domain results; knows no HTTP.
        .target(name: "OCSSEngine", dependencies: ["OCSSCore", "OCSSProj", "OCSSStore", "OCSSPlatforms"]),

        // Composition: the HTTP face and the service (and the file readers the service and the CLI share).
        .target(
            name: "OCSSApp",
            dependencies: ["OCSSCore", "OCSSProj", "OCSSStore", "OCSSPlatforms", "OCSSHTTP", "OCSSEngine", "OCSSPostgres"]
        ),
        // The command line: argument parsing and each command's body (Sources/ocss/Commands).
        .executableTarget(
            name: "ocss", dependencies: ["OCSSApp", "OCSSEngine", "OCSSCore", "OCSSStore", "OCSSPlatforms", "OCSSProj", "OCSSPostgres"]),
        .executableTarget(name: "ocss-bench", dependencies: ["OCSSCore", "OCSSApp"], path: "Benchmarks/ocss-bench"),

        // Tests: one target per module plus shared support.
        .target(name: "OCSSTestSupport", dependencies: ["OCSSCore"], path: "Tests/OCSSTestSupport"),
        .testTarget(name: "OCSSCoreTests", dependencies: ["OCSSCore", "OCSSTestSupport"]),
        .testTarget(name: "OCSSProjTests", dependencies: ["OCSSProj", "OCSSCore"]),
        // Fixtures are read from disk by path; make_fixtures.py writes them.
        .testTarget(name: "OCSSPlatformsTests", dependencies: ["OCSSPlatforms", "OCSSCore", "OCSSTestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "OCSSStoreTests", dependencies: ["OCSSStore", "OCSSCore", "OCSSTestSupport"]),
        .testTarget(name: "OCSSHTTPTests", dependencies: ["OCSSHTTP", "OCSSTestSupport"]),
        .testTarget(name: "OCSSPostgresTests", dependencies: ["OCSSPostgres", "OCSSTestSupport"]),
        .testTarget(
            name: "OCSSAppTests",
            dependencies: [
                "OCSSApp", "OCSSEngine", "OCSSCore", "OCSSHTTP", "OCSSStore", "OCSSPlatforms", "OCSSPostgres", "OCSSTestSupport", "ocss",
            ],
            exclude: ["Fixtures"]
        ),
    ]
)

// One place for strictness (CONVENTIONS.md 1).
for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(contentsOf: [
        .swiftLanguageMode(.v6),
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("InternalImportsByDefault"),
        .enableUpcomingFeature("MemberImportVisibility"),
    ])
    target.swiftSettings = settings
}
