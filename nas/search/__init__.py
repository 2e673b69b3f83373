"""The search: Optuna proposes architectures, the trial executor (Ray Tune) runs them, an Optuna storage keeps
every result. This package imports Optuna; Ray only through vitnas.nas.executor.
"""
