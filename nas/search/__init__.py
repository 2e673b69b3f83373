"""The search: Optuna proposes architectures, Ray Tune runs them as trials, an Optuna storage keeps every result.

Only this package imports Optuna and Ray.
"""
