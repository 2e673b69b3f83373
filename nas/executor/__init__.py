"""The one trial executor: any producer of trial requests (the search, an ablation grid, a scheduler) runs its
trials on Ray through `vitnas.nas.executor.run.execute`.

This package's front (the request and result types, the producer protocol) imports neither Ray nor Optuna, so a
producer and its tests do not pay for Ray; only `run` and `worker` import it.
"""
from vitnas.nas.executor.requests import STOP, WAIT, Producer, Resources, Signal, TrialRequest, TrialResult

__all__ = ["STOP", "WAIT", "Producer", "Resources", "Signal", "TrialRequest", "TrialResult"]
