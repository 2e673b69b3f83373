"""What runs inside a Ray worker: one trial, from config to every metric, reported back to the driver as JSON.

Exceptions never escape to Ray: a trial that raises, runs out of memory or diverges is reported as failed with its
reason, so the driver records it and the search goes on.
"""
import io
import json
import time
import traceback

import torch
from ray import tune

from vitnas.nas.trial import TrialSettings, run_trial
from vitnas.search_spaces.config import ArchConfig


def run_trial_in_worker(config: dict, *, data, settings: TrialSettings, threads: int) -> None:
    torch.set_num_threads(threads)
    log = io.StringIO()
    started, started_at = time.monotonic(), time.time()

    def on_epoch(epoch) -> None:
        log.write(f"epoch {epoch.epoch}: loss {epoch.train_loss:.4f} train acc {epoch.train_accuracy:.4f} "
                  f"val acc {epoch.val_accuracy:.4f} {epoch.images_per_second:.0f} img/s\n")
        tune.report({"epoch": epoch.epoch, "val_accuracy": epoch.val_accuracy})

    try:
        outcome = run_trial(ArchConfig.from_dict(config["arch"]), data, settings, on_epoch=on_epoch)
        payload = {"status": outcome.status, "metrics": outcome.metrics, "error": outcome.error,
                   "history": outcome.history}
    except (torch.OutOfMemoryError, MemoryError) as err:
        payload = {"status": "failed", "error": f"out of memory: {str(err).splitlines()[0] if str(err) else ''}"}
        log.write(traceback.format_exc())
    except Exception as err:  # noqa: BLE001 -- any failure of one architecture is that trial's result
        payload = {"status": "failed", "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}
        log.write(traceback.format_exc())
    payload.update(duration_s=time.monotonic() - started, started_at=started_at, finished_at=time.time())
    payload["log"] = log.getvalue()
    tune.report({"vitnas_outcome": json.dumps(payload, default=float)})
