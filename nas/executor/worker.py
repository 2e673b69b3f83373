"""What runs inside a Ray worker: one trial request, from config to every metric, reported back to the driver.

Exceptions never escape to Ray: a trial that raises, runs out of memory or diverges is reported with its outcome
and reason, so the driver records it and the execution goes on.
"""
import io
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict

import torch
from torch import nn

from vitnas.nas.data import Dataset
from vitnas.nas.executor.requests import TrialRequest, TrialResult
from vitnas.nas.outcome import Outcome
from vitnas.nas.trainer import EpochMetrics
from vitnas.nas.trial import run_trial
from vitnas.search_spaces.config import ArchConfig

RESULT_KEY = "vitnas_result"  # the key of a run's final report; every other report is one epoch's metrics


def weights_bytes(model: nn.Module) -> bytes:
    """The state dict as torch.save writes it to a checkpoint's model.pt, with every tensor on the CPU."""
    buffer = io.BytesIO()
    torch.save({name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}, buffer)
    return buffer.getvalue()


def run_request(request: TrialRequest, data: Dataset | None,
                on_epoch: Callable[[EpochMetrics], None] = lambda epoch: None) -> TrialResult:
    log = io.StringIO()
    started, started_at = time.monotonic(), time.time()

    def epoch_done(epoch: EpochMetrics) -> None:
        log.write(f"epoch {epoch.epoch}: loss {epoch.train_loss:.4f} train acc {epoch.train_accuracy:.4f} "
                  f"val acc {epoch.val_accuracy:.4f} {epoch.images_per_second:.0f} img/s\n")
        on_epoch(epoch)

    weights = None
    try:
        trial = run_trial(ArchConfig.from_dict(request.arch), data, request.settings, on_epoch=epoch_done)
        outcome, metrics, history, error = Outcome(trial.status), trial.metrics, trial.history, trial.error
        if request.keep_weights and outcome is Outcome.OK:
            weights = weights_bytes(trial.model)
    except (torch.OutOfMemoryError, MemoryError) as err:
        outcome, metrics, history, error = Outcome.FAILED, {}, [], f"out of memory: {_first_line(err)}"
        log.write(traceback.format_exc())
    except Exception as err:  # noqa: BLE001 -- any failure of one architecture is that run's result
        outcome, metrics, history, error = Outcome.FAILED, {}, [], f"{type(err).__name__}: {_first_line(err)}"
        log.write(traceback.format_exc())
    return TrialResult(outcome, metrics, history, error=error, log=log.getvalue(),
                       duration_s=time.monotonic() - started, started_at=started_at, finished_at=time.time(),
                       weights=weights)


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else ""


def run_in_worker(config: dict, *, datasets: dict, threads: int) -> None:
    """The Tune trainable: `datasets` maps names to Ray object refs, each shipped to the cluster once."""
    import ray
    from ray import tune

    torch.set_num_threads(threads)
    request: TrialRequest = config["request"]
    result = run_request(request, ray.get(datasets[request.data]), lambda epoch: tune.report(asdict(epoch)))
    tune.report({RESULT_KEY: result})
