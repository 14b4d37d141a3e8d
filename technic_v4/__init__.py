"""technic: a self-hostable stock technical scanner.

One way through: store -> Panel -> indicators -> scores -> alpha -> result.
The library is pure and importable without Ray; `deployments/` adapts it to Ray Serve.
"""

__version__ = "0.1.0"
