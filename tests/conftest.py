"""Settings and fixtures every test module may use."""
import os
import shutil

import pytest

# Every model the tests build is tiny: one thread computes it as fast as two, while spinning OpenMP pool threads on a
# shared, busy machine (CI runs Ray trials in the same suite) make training tests many times slower in CPU and wall
# time. Set before any test module imports torch, so the subprocesses the tests start inherit it too.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The studies the tests write are SQLite files that sync to disk on every commit: on a disk, those waits are about
# half the fast suite's wall time. Where /dev/shm is a roomy RAM file system (not a container's 64 MB one), pytest
# puts tmp_path there instead (its numbered folders, kept and cleaned as under /tmp).
if "PYTEST_DEBUG_TEMPROOT" not in os.environ and os.path.isdir("/dev/shm") \
        and shutil.disk_usage("/dev/shm").free > 4 * 2**30:
    os.environ["PYTEST_DEBUG_TEMPROOT"] = "/dev/shm"

SYNTHETIC = "synthetic:n=192,size=8,chans=1,classes=3"


@pytest.fixture
def memory_store(tmp_path):
    """make(...) -> a StudyStore whose Optuna study lives in memory, with its trial folders under tmp_path/NAME.

    For tests of how a search proposes, counts and records (the producer's logic): the store is the one a search
    uses, only the Optuna storage differs, and SQLite costs about 0.1 s of CPU per trial. Tests of what persists,
    or that read a study back (`vitnas report`, StudyStore.open), use StudyStore.create's SQLite study."""
    def make(name: str = "s", sampler: str = "tpe", seed: int = 0, objectives: str = "accuracy,macs",
             dataset: str = SYNTHETIC):
        import optuna

        from vitnas.nas.metrics import parse_objectives
        from vitnas.nas.search.samplers import make_sampler
        from vitnas.nas.search.study import StudySpec, StudyStore

        spec = StudySpec(name=name, storage="memory", space="metaformer", dataset=dataset,
                         objectives=parse_objectives(objectives), sampler=sampler, seed=seed)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=make_sampler(sampler, seed), study_name=name,
                                    directions=[o.direction for o in spec.objectives])
        return StudyStore(tmp_path / name, spec, study)
    return make
