"""The search's TPE reads the study once per proposal and proposes exactly what Optuna's own TPE proposes."""
import warnings

import optuna

from vitnas.nas.search.samplers import make_sampler
from vitnas.search_spaces.space import load_space

SPACE = load_space("metaformer")


def _proposals(sampler: optuna.samplers.BaseSampler, storage, n: int = 30, running: int = 2) -> list[dict]:
    """n proposals on a two-objective study; every third trial is left RUNNING (so constant_liar has lies to tell)
    and every fifth fails, as rejected proposals do."""
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler, storage=storage)
    proposed = []
    for i in range(n):
        trial = study.ask()
        config = SPACE.suggest(trial, image_size=8, in_chans=1, num_classes=3)
        proposed.append(trial.params)
        if i % 5 == 4:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif i % 3 != 2 or i >= n - running:
            study.tell(trial, [len(str(config.to_dict())) % 7 / 7, float(i % 4)])
    return proposed


class _Counting(optuna.storages.InMemoryStorage):
    def __init__(self):
        super().__init__()
        self.reads = 0

    def get_all_trials(self, *args, **kwargs):
        self.reads += 1
        return super().get_all_trials(*args, **kwargs)


def test_the_search_tpe_proposes_what_optunas_tpe_proposes_with_far_fewer_reads():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        plain = optuna.samplers.TPESampler(seed=3, multivariate=True, group=True, constant_liar=True,
                                           n_startup_trials=8)
    theirs, ours = _Counting(), _Counting()
    assert _proposals(make_sampler("tpe", 3), ours) == _proposals(plain, theirs)
    assert ours.reads * 3 < theirs.reads
