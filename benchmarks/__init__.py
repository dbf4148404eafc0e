"""Benchmarks that print markdown tables (`python -m benchmarks`, `python -m benchmarks.<name>`): kept out of the
test suite because they time things; each figure and verdict they print comes from the run that prints it."""
