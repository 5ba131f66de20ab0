// ocss: entry point. Commands live in Commands.swift; nothing here is called from C.
import OCSSApp

CLI.run(Array(CommandLine.arguments.dropFirst()))
