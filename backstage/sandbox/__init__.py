"""Sandboxes for tests, benchmarks and demos: namespace test hosts reachable over loopback SSH."""
