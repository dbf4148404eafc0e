"""Scoring files with any predictor: inputs (FASTA/npy/h5 batches), score, scan, variants, mutagenesis and
outputs (TSV, bedGraph, BED, rejects, resume). Results are shaped into rows here, once, for CLI and service."""
