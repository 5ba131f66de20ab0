// ocss-bench: benchmarks that check their own answers before printing figures.
import Glibc

BenchCLI.run(Array(CommandLine.arguments.dropFirst()))
