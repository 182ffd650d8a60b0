"""The benchmark: contenders, speed and accuracy on generated and shared scans (see bench/REPORT.md)."""
