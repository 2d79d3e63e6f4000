"""Speed, memory and quality benchmarks. Results are appended to ``benchmarks/results/``."""
