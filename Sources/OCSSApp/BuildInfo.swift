import OCSSEngine
/// What this build is, for `ocss --version`, `/healthz` and the `ocss_build_info` metric. The version follows the
/// issues landed (0.MAJOR-ISSUE.n) and changes by hand with a release; the on-disk schema version is separate
/// (`/healthz` `schema_version`).
package enum BuildInfo {
    package static let version = "0.23.0"
}
