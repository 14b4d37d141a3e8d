"""technic as a Ray Serve application: the HTTP API and the deployments behind it.

`api/` is the FastAPI app (built by `api.main.create_app`, testable without Ray); `ingress`,
`indicators`, `alpha` and `app` are the Serve deployments and the app builder that
`serve_config.yaml` points at. They place the steps of the library's one scan engine
(`technic_v4.scan`) on replicas; none of them re-implements a stage. `launch` (Serve) and
`local` (in-process) serve either app behind `edge`, HAProxy, on 127.0.0.1.
"""
