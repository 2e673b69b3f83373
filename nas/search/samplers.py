"""The `--sampler` names and the Optuna sampler each one makes."""
import copy
import warnings
from collections.abc import Container

import optuna

from vitnas.errors import UserError
from vitnas.nas.search.study import AVOID_ATTR


class _ReadOnce:
    """The study as TPE sees it while proposing one trial: its trials read from the storage once, and the proposals
    to avoid (AVOID_ATTR) shown as running.

    With `group` and `constant_liar` TPE reads every trial again for each group of parameters and each parameter
    sampled on its own (about 40 reads of a SQLite study per proposal, 0.5 s at 180 trials). Within one proposal on
    one driver nothing else changes the study, and the trial being proposed is left out of what TPE models, so
    one snapshot gives the same proposal.

    TPE skips FAIL trials, so it never learnt where the rejected proposals lie. The constant liar already treats a
    running trial as the worst kind, to keep proposals away from it: in TPE's "above" group, and counted neither in
    start-up nor in the size of the "good" group. That is what a proposal to avoid should be, so it is shown as one.
    """

    def __init__(self, study: optuna.Study, number: int):
        self.study, self.number = study, number  # the trial being proposed: a new one reads the study again
        self._trials: list[optuna.trial.FrozenTrial] | None = None  # read when first asked for

    def __getattr__(self, name: str):
        return getattr(self.study, name)

    def _read(self) -> list[optuna.trial.FrozenTrial]:
        return [_as_running(t) if t.user_attrs.get(AVOID_ATTR) else t
                for t in self.study._get_trials(deepcopy=False, states=None)]

    def _get_trials(self, deepcopy: bool = True, states: Container | None = None,
                    use_cache: bool = False) -> list[optuna.trial.FrozenTrial]:
        if self._trials is None:
            self._trials = self._read()
        trials = self._trials if states is None else [t for t in self._trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def get_trials(self, deepcopy: bool = True, states: Container | None = None) -> list[optuna.trial.FrozenTrial]:
        return self._get_trials(deepcopy, states)


def _as_running(trial: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
    shown = copy.copy(trial)
    shown.state = optuna.trial.TrialState.RUNNING
    return shown


class _Tpe(optuna.samplers.TPESampler):
    """Multivariate TPE models the joint choices (mixer x width x depth); constant_liar keeps parallel trials apart
    and rejected proposals away; each proposal reads the study once (_ReadOnce)."""

    def __init__(self, seed: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # `group` works; it is only young
            super().__init__(seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=8)
        self._snapshot: _ReadOnce | None = None

    def _view(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> _ReadOnce:
        if self._snapshot is None or self._snapshot.number != trial.number or self._snapshot.study is not study:
            self._snapshot = _ReadOnce(study, trial.number)
        return self._snapshot

    def sample_relative(self, study, trial, search_space):
        return super().sample_relative(self._view(study, trial), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return super().sample_independent(self._view(study, trial), trial, param_name, param_distribution)


def _qmc(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False,
                                      warn_asynchronous_seeding=False,
                                      independent_sampler=optuna.samplers.RandomSampler(seed=seed))


SAMPLER_NAMES = ("tpe", "nsga2", "nsga3", "random", "qmc", "gp")
_FACTORIES = {
    "tpe": _Tpe,
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
