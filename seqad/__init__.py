"""seqad: anomaly-detection benchmarks on e-commerce behaviour sequences."""

__version__ = '0.1.0'
