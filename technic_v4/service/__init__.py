"""The scanner as a service: what the HTTP app asks of it (`backend.ScanBackend`) and the
in-process implementation (`inprocess.InProcessBackend`); the Serve deployment supplies its
own backend over the same engine (deployments/ingress.py)."""
