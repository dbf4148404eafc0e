"""Benchmarks that print markdown ratio tables (python -m benchmarks.<name>)."""
