"""A local AccountsIQ (Integration 1.1) for demos, tests and benchmarks: real HTTP SOAP on
127.0.0.1, state in SQLite, AIQ's validation and status conventions, and fault injection."""
