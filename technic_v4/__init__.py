"""technic: a self-hostable stock technical scanner.

One way through: store -> Panel -> indicators -> scores -> alpha -> result.
The library is pure and importable without Ray; `deployments/` adapts it to Ray Serve.
"""

import os

# Two OpenMP runtimes share this process (numba's parallel kernels, XGBoost's own libgomp), each
# read once when first loaded. Their default spin-waiting makes them fight over the cores of a
# small box: measured here, the 5,000 x 252 indicator stage went from ~15 ms to 170-350 ms and
# training ran 6x slower. Passive waiting yields the core. Set before either runtime loads.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

__version__ = "0.1.0"
