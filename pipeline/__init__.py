"""formrescue: scanned fiscal forms to clean, reviewable records. The library never imports Prefect."""

__version__ = "0.1.0"
