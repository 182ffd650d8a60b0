"""Prefect flows over the library in ``pipeline/``. Import :mod:`flows.prefect_env` first: it sets up
Prefect's environment (embedded, offline, no telemetry) before Prefect itself is imported."""
