"""The HTTP API: `main.create_app(backend)` builds it; routers, schemas and dependencies."""
