"""The origin design's engine modules, kept because users' scripts import them.

Each is a thin facade over the one engine (technic_v4/scan, indicators, alpha), never a second
implementation: `batch_processor` (indicators for price frames a script already holds),
`alpha_inference` (the alpha models by name, forecasts for feature rows) and `ray_runner`
(the scan with its chunks on Ray actors). README "Coming from technic_v4" maps each name.
"""
