"""Alpha models: features, training, the model registry, inference (XGBoost, never pickle)."""
