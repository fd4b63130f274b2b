"""powerbus benchmarks: ``make bench`` (or ``python -m benchmarks``) writes benchmarks/results/."""
