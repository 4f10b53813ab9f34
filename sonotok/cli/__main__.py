"""`python -m sonotok.cli ...` runs the `sonotok` command."""

import sys

from sonotok.cli import main

sys.exit(main())
