"""python -m bench: the side-by-side comparison (bench/compare.py; scripts/bench runs it)."""

import sys

from bench.compare import main

sys.exit(main())
