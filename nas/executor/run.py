"""Run a producer's trial requests on Ray Tune: start or join Ray, check the cluster fits, run, stop cleanly.

Tune decides when and where runs start; three thin adapters hand its calls to the Dispatcher: a Searcher (Tune
asks it for the next run), a scheduler (each epoch: go on or stop) and a callback (a run's final report, taken out
of the result so the weights never enter Tune's experiment state). The producer persists each result the moment
its run ends; Tune's own files are only a by-product under `run_dir`.
"""
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path

import ray
from ray import tune
from ray.tune import Callback, Stopper
from ray.tune.progress_reporter import TrialProgressCallback
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from vitnas.nas.data import Dataset
from vitnas.nas.executor.dispatch import Dispatcher
from vitnas.nas.executor.requests import WAIT, Producer, Resources, TrialRequest
from vitnas.nas.executor.worker import RESULT_KEY, run_in_worker
from vitnas.nas.trainer import EpochMetrics
from vitnas.errors import UserError

_EPOCH_FIELDS = [f.name for f in fields(EpochMetrics)]


def execute(producer: Producer, datasets: Mapping[str, Dataset], resources: Resources, run_dir: Path) -> None:
    """Run every request the producer makes until it says there are no more and its runs have ended, or Ctrl-C.

    Each data set is shipped to Ray once. Runs still going when the execution stops are passed to
    producer.on_interrupted; an exception raised by the producer is raised here after Ray has stopped.
    """
    dispatcher = Dispatcher(producer, set(datasets))
    _start_ray(resources)
    try:
        _check_cluster_fits(resources)
        refs = {name: ray.put(data) for name, data in datasets.items()}
        trainable = tune.with_parameters(run_in_worker, datasets=refs, threads=resources.threads)
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial}),
            tune_config=tune.TuneConfig(search_alg=_Searcher(dispatcher, resources), scheduler=_Scheduler(dispatcher),
                                        num_samples=-1, max_concurrent_trials=resources.workers, reuse_actors=True,
                                        trial_dirname_creator=_dirname),
            run_config=tune.RunConfig(name=f"run-{time.strftime('%Y%m%d-%H%M%S')}",
                                      storage_path=str(run_dir.resolve()), verbose=0, stop=_StopOnError(dispatcher),
                                      callbacks=[_Results(dispatcher), _Silent()],
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )
        tuner.fit()
    finally:
        try:
            dispatcher.interrupt_running()
        finally:
            ray.shutdown()
    if dispatcher.error is not None:
        raise dispatcher.error


def _start_ray(resources: Resources) -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # let verbose=0 silence Tune's own status tables
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # the producer's store is the record
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if resources.address:
        try:
            ray.init(address=resources.address, log_to_driver=False, logging_level=logging.ERROR)
        except ConnectionError as err:  # `auto` with no cluster on this machine, or a head that went away
            raise UserError(f"--address {resources.address}: {str(err).splitlines()[0]} Start one with `ray start "
                            "--head`, or leave --address out for a local Ray.") from None
        return
    need = resources.workers * resources.cpus_per_trial
    ray.init(num_cpus=max(os.cpu_count() or 1, int(need + 0.999)), include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, configure_logging=True)


def _check_cluster_fits(resources: Resources) -> None:
    """Tune would wait forever for resources no node has: say so instead."""
    have = ray.cluster_resources()
    for name, per_trial, option in (("CPU", resources.cpus_per_trial, "--cpus-per-trial"),
                                    ("GPU", resources.gpus_per_trial, "--gpus-per-trial")):
        if per_trial > have.get(name, 0):
            raise UserError(f"{option} {per_trial:g} but the Ray cluster has {have.get(name, 0):g} {name}s: "
                            f"lower {option}" + (" or join a cluster with GPUs (--address)" if name == "GPU" else ""))


def _on_given_device(request: TrialRequest, resources: Resources) -> TrialRequest:
    """A run uses the GPU share Ray gave it, and the CPU when it was given none."""
    train = request.settings.train
    if train.device != "auto":
        return request
    train = replace(train, device="cuda" if resources.gpus_per_trial > 0 else "cpu")
    return replace(request, settings=replace(request.settings, train=train))


def _dirname(trial) -> str:
    return "trial_" + re.sub(r"[^\w.-]+", "_", trial.config["request"].key)


class _DriverOnly:
    """Tune pickles its searcher, scheduler, stopper and callbacks into its experiment files. The producer is the
    record and holds live handles (a study, a view), so the copies Tune writes carry nothing."""

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        pass


class _Searcher(_DriverOnly, Searcher):
    def __init__(self, dispatcher: Dispatcher, resources: Resources):
        super().__init__()
        self.dispatcher, self.resources = dispatcher, resources

    def suggest(self, trial_id: str) -> dict | str | None:
        request = self.dispatcher.next_request(trial_id)
        if request is None:
            return Searcher.FINISHED
        if request is WAIT:
            return None
        return {"request": _on_given_device(request, self.resources)}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.dispatcher.ended(trial_id)

    def save(self, checkpoint_path: str) -> None:
        pass

    def restore(self, checkpoint_path: str) -> None:
        pass


class _Scheduler(_DriverOnly, FIFOScheduler):
    def __init__(self, dispatcher: Dispatcher):
        super().__init__()
        self.dispatcher = dispatcher

    def choose_trial_to_run(self, tune_controller):
        # Tune asks this on every step of its loop, reports or not: the one place to catch a run stuck in a step
        # that outlasts its timeout. Killing its actor frees its memory at once; Tune then ends it as an error.
        overdue = set(self.dispatcher.overdue())
        for trial in tune_controller.get_live_trials():
            if trial.trial_id in overdue and trial.temporary_state.ray_actor is not None:
                ray.kill(trial.temporary_state.ray_actor)
                self.dispatcher.killed(trial.trial_id)
        return super().choose_trial_to_run(tune_controller)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if RESULT_KEY not in result and "epoch" in result:
            epoch = EpochMetrics(**{name: result[name] for name in _EPOCH_FIELDS})
            if self.dispatcher.progress(trial.trial_id, epoch):
                return TrialScheduler.STOP
        return TrialScheduler.CONTINUE


class _Results(_DriverOnly, Callback):
    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        # Tune lets callbacks edit the result before it becomes the trial's last result: take the run's result
        # (with its weights) out, so it is handed over once and Tune never writes it into its own state files
        if RESULT_KEY in result:
            self.dispatcher.finished(trial.trial_id, result.pop(RESULT_KEY))


class _Silent(TrialProgressCallback):
    """Tune adds a printer that writes a line per finished trial to stdout whatever its verbosity, unless one of its
    kind is given: this one prints nothing, so stdout stays the command's own (a report, --json)."""

    def _print(self, msg: str) -> None:
        pass


class _StopOnError(_DriverOnly, Stopper):
    """A producer that raised stops everything; Tune then ends the runs without asking the searcher."""

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.dispatcher.error is not None
