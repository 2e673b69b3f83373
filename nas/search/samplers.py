"""The `--sampler` names and the Optuna sampler each one makes."""
import warnings

import optuna

from vitnas.errors import UserError


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    # multivariate TPE models the joint choices (mixer x width x depth); constant_liar keeps parallel trials apart
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # `group` works; it is only young
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=8)


def _qmc(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False,
                                      warn_asynchronous_seeding=False,
                                      independent_sampler=optuna.samplers.RandomSampler(seed=seed))


SAMPLER_NAMES = ("tpe", "nsga2", "nsga3", "random", "qmc", "gp")
_FACTORIES = {
    "tpe": _tpe,
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed, population_size=16),
    "nsga3": lambda seed: optuna.samplers.NSGAIIISampler(seed=seed, population_size=16),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "qmc": _qmc,
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed, n_startup_trials=8, warn_independent_sampling=False),
}


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name not in SAMPLER_NAMES:
        raise UserError(f"--sampler: unknown sampler {name!r}; choose from {', '.join(SAMPLER_NAMES)}")
    return _FACTORIES[name](seed)
