"""The floor every wing stands on: typed errors, escaping, time parsing, file locks, HTTP, secrets."""
