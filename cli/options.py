"""Options shared by several commands, and the one place they become typed settings."""
import re
from typing import Annotated

import typer

from vitnas.nas.metrics import measure_help
from vitnas.nas.robustness import parse_suite
from vitnas.nas.trainer import TrainSettings, resolve_device
from vitnas.nas.trial import TrialSettings
from vitnas.errors import UserError

DatasetOption = Annotated[str, typer.Option(
    help="digits (bundled 8x8 digits, no download) | cifar10 | cifar100 | synthetic[:n=..,size=..,chans=..,"
         "classes=..] | a PATH: ImageFolder folder or .zip, CIFAR python batch folder, MNIST-style idx folder, "
         ".npz with x_train,y_train,x_test,y_test.")]
EpochsOption = Annotated[int | None, typer.Option(min=1, help="Training budget in epochs (train's default: 30).")]
# A budget past a week is a typo (or `inf`, which would train forever at learning rate 0): refuse it up front.
TimeOption = Annotated[float | None, typer.Option("--time", min=0.1, max=7 * 24 * 3600, help="Wall-clock budget in "
                                                  "seconds for training and the measurements after it: training ends "
                                                  "early enough for them (search's default: 20 per trial).")]
# Seeds reach torch, numpy and Python's random; numpy takes 0 .. 2**32 - 1.
SeedOption = Annotated[int, typer.Option(min=0, max=2**32 - 1, help="Seed for data split, initialisation, order "
                                         "and augmentation (0 to 4294967295).")]
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]{1,2})?")


def _device_name(value: str) -> str:
    """Checked when the option is read: a misspelt device would otherwise fail every trial of a search."""
    if not _DEVICE.fullmatch(value):
        raise typer.BadParameter(f"got {value[:40]!r}; use auto, cpu, cuda or cuda:N")
    return value


DeviceOption = Annotated[str, typer.Option(callback=_device_name, help="auto | cpu | cuda | cuda:N.")]
RobustnessOption = Annotated[str, typer.Option(help="Robustness suite: default | full | none | an explicit "
                                               "list such as 'gaussian:0.04,0.08;fgsm:1;jpeg:3' (README).")]
MeasureOption = Annotated[str, typer.Option("--measure", help=measure_help())]
PrecisionOption = Annotated[str, typer.Option(help="auto (bf16 autocast on a GPU and on CPUs with native bf16, "
                                              "AVX-512 BF16 or AMX; fp32 elsewhere) | bf16 | fp32, for training and "
                                              "evaluation.")]
# Where runs go, for every command that runs them on the trial executor (search, ablate)
WorkersOption = Annotated[int, typer.Option(min=1, help="Runs (trials) going at once.")]
CpusPerTrialOption = Annotated[float, typer.Option(min=0.01, help="CPU threads per run (Ray resource).")]
GpusPerTrialOption = Annotated[float, typer.Option(min=0, help="GPUs per run; 0.25 packs four runs on a GPU.")]


def _ray_address(value: str | None) -> str | None:
    """Checked when the option is read, so a bad or silent address never starts a study."""
    from vitnas.nas.executor.address import check_address  # no Ray import: only the syntax and a TCP connection

    return None if value is None else check_address(value.strip())


AddressOption = Annotated[str | None, typer.Option(envvar="RAY_ADDRESS", callback=_ray_address, help="Join this Ray "
                                                   "cluster (HOST:PORT, ray://HOST:10001 or auto; default "
                                                   "$RAY_ADDRESS) instead of starting a local Ray.")]

# `vitnas train` defaults to a fixed epoch budget (same seed, same numbers). A search defaults to a wall-clock
# budget per trial: sampled architectures differ in cost by 10,000x, and equal time keeps the default search of the
# bundled digits within minutes on 2 cores whatever the sampler proposes.
TRAIN_EPOCHS = 30
SEARCH_SECONDS = 20.0
SEARCH_EVAL_IMAGES = 2000  # validation for ranking: +-1.1 points of accuracy (one standard error) at 50%


def trial_settings(epochs: int | None, seconds: float | None, seed: int, device: str, robustness: str, *,
                   search: bool, measurements: frozenset[str], precision: str = "auto") -> TrialSettings:
    if epochs is not None and seconds is not None:
        raise UserError("--epochs and --time are two budgets: give one of them")
    parse_suite(robustness)  # a bad suite fails now, not after training
    if not search:  # this process trains: the device must be here (a search's runs get theirs from Ray)
        check_device_here(device)
    if epochs is None and seconds is None:
        epochs, seconds = (None, SEARCH_SECONDS) if search else (TRAIN_EPOCHS, None)
    # a search validates (each epoch) and tests (where asked) on bounded subsets, so every trial's evaluation costs a
    # bounded time whatever the data set; train and evaluate use whole splits
    bound = SEARCH_EVAL_IMAGES if search else None
    return TrialSettings(train=TrainSettings(epochs=epochs, seconds=seconds, seed=seed, device=device,
                                             precision=precision),
                         # train and evaluate report on test: they always take the test pass
                         measurements=measurements if search else measurements | {"test"}, robustness=robustness,
                         robustness_split="val" if search else "test", val_images=bound, test_images=bound)


def check_device_here(device: str) -> None:
    """The device exists on this machine (cuda:N up to the GPUs it has), before any data is read."""
    import torch

    chosen = resolve_device(device)
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise UserError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s), numbered from 0")


def check_search_device(device: str, gpus_per_trial: float, *, local: bool) -> None:
    """Ray hides the GPUs from a run that asked for none, so a CUDA device needs a GPU share per trial; and a local
    Ray has only this machine's GPUs (checked before the study exists, not by Ray after)."""
    import torch

    if device.startswith("cuda") and gpus_per_trial == 0:
        raise UserError(f"--device {device}: a trial sees a GPU only with --gpus-per-trial > 0 (1, or 0.25 to pack "
                        "four on a GPU); or use --device auto")
    if local and gpus_per_trial > 0 and not torch.cuda.is_available():
        raise UserError(f"--gpus-per-trial {gpus_per_trial:g}: this machine has no CUDA GPU; use 0, or join a "
                        "cluster with GPUs (--address)")


_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}


def parse_count(text: str | None, option: str) -> int | None:
    """'50M' -> 50_000_000; None stays None."""
    if text is None:
        return None
    number, suffix = text.strip()[:-1], text.strip()[-1:].upper()
    if suffix not in _SUFFIXES or suffix == "":
        number, suffix = text.strip(), ""
    try:
        value = float(number) * _SUFFIXES[suffix]
    except ValueError:
        raise UserError(f"{option}: {text!r} is not a count; write e.g. 500000, 500K, 50M or 1.2G") from None
    if not 0 < value < 1e18:  # also refuses nan, inf and 1e400 (which float() reads as inf)
        raise UserError(f"{option}: must be a positive count below 1e18, got {text!r}")
    return int(value)
