"""Watches: tell me when a symbol enters or leaves my screen — delivered once, signed, kept.

    model.py     a watch (screen + targets + options), event ids, secrets
    store.py     the durable state in technic.sqlite: watches, evaluations, the event outbox,
                 deliveries with leases, the attempt log, failed watches; pruning
                 (WatchStore interface + SQLite)
    evaluate.py  every watch at each new session in one pass (scan/many.py), diffed with
                 its last evaluation into entered / left / rank_moved (/ truncated) events;
                 a watch that fails is marked failed, the others advance
    safety.py    where a target may point (no private networks; pinned addresses; the
                 apprise schemes allowed, their sends confined), redaction of URLs
    send.py      one attempt: a signed webhook (Standard Webhooks) or an apprise message
    deliver.py   the deliverer: claim, send, settle; backoff with jitter, circuit breaker,
                 dead letters
    service.py   what the CLI, the HTTP API and the Watcher deployment call
The flow: a trigger (an append, a new data version) → `catch_up` → `store.record` (the
evaluation, its events and their deliveries in one transaction) → `Deliverer.run_once`
(lease, send, acknowledge in the database) → the receiver.
"""
