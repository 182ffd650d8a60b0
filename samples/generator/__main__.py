"""python -m samples.generator: see samples.generator.cli."""

from .cli import main

raise SystemExit(main())
