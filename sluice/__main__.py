"""`python -m sluice ...`: see sluice/cli.py."""
from sluice.cli import main

raise SystemExit(main())
