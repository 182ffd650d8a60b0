"""Speed experiments behind the benchmark report (prototypes; the pipeline's own files stay untouched)."""
