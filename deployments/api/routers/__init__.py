"""One router per resource: scan, universe (+ sectors), symbols, models, health."""
