"""Contract-faithful fake CRM servers for tests and benchmarks (loopback only, port 0)."""
