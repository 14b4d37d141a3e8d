"""technic as a Ray Serve application: the HTTP API and the deployments behind it.

`api/` is the FastAPI app (built by `api.main.create_app`, testable without Ray), `pipeline` the
Ray-free chunked scan every backend runs, and `ingress`, `indicators`, `alpha`, `app` the Serve
deployments and the app builder that `serve_config.yaml` points at.
"""
