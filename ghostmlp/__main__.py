"""`python -m ghostmlp`: the command line."""
import sys

from ghostmlp.cli import main

sys.exit(main())
