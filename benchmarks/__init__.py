"""ghostmlp's benchmarks: run from a checkout as `python -m benchmarks.<name>` with ghostmlp installed."""
import sys
from pathlib import Path

# `python -m` puts the checkout first on sys.path, where ghostmlp/ is the source folder
# without compiled kernels; unless they were built in place, use the installed package.
_checkout = Path(__file__).resolve().parents[1]
if not any((_checkout / "ghostmlp").glob("_kernels.*.so")):
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _checkout]
