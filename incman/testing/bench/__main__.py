"""`python -m incman.testing.bench` (make bench): every figure of the bench."""

import sys

from incman.testing.bench.pipeline import main

sys.exit(main())
