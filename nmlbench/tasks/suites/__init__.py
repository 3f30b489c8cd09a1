"""Built-in suites (package data): one YAML per suite, suite name = file stem."""
