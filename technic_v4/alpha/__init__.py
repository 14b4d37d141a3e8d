"""Alpha models: features, training, the model registry, inference (XGBoost, never pickle).

The OpenMP wait policy both XGBoost and numba need is set in `technic_v4/__init__.py`.
"""
