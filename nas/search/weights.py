"""Which trials of a search keep their trained weights (`trials/NNNN/model.pt`, for `vitnas export`).

`all` keeps every completed trial's weights, `front` only those of trials on the Pareto front, `none` asks the
workers for none. `auto` (the default) keeps all of them for models up to SMALL_MODEL_PARAMS parameters, whose
weights cost at most ~20 MB a trial, and treats larger models as `front`.
"""
from dataclasses import dataclass

from vitnas.nas.pareto import non_dominated
from vitnas.nas.search.study import StudyStore
from vitnas.errors import UserError

KEEP_WEIGHTS = ("auto", "all", "front", "none")
SMALL_MODEL_PARAMS = 5_000_000


@dataclass(frozen=True)
class KeepWeights:
    mode: str = "auto"

    def __post_init__(self) -> None:
        if self.mode not in KEEP_WEIGHTS:
            raise UserError(f"--keep-weights: unknown choice {self.mode!r}; choose from {', '.join(KEEP_WEIGHTS)}")

    @property
    def wanted(self) -> bool:
        """Do the workers send weights back at all?"""
        return self.mode != "none"

    def front_only(self, params: int) -> bool:
        return self.mode == "front" or (self.mode == "auto" and params > SMALL_MODEL_PARAMS)

    def drop_off_front(self, store: StudyStore) -> list[int]:
        """Delete the weights of trials off the Pareto front, where only the front keeps them. Weights are written
        as each trial ends (a kill -9 must not lose them) and dropped here; a dominated trial stays dominated, so a
        dropped one is never wanted again."""
        summary = store.summary()
        done = [t for t in summary.trials if t.state == "COMPLETE"]
        points = [[t.values[o.name] for o in summary.objectives] for t in done]
        front = {done[i].number for i in non_dominated(points, [o.direction for o in summary.objectives])}
        dropped = []
        for trial in done:
            path = store.weights_path(trial.number)
            if trial.number not in front and self.front_only(int(trial.metrics.get("params", 0))) and path.exists():
                path.unlink()
                dropped.append(trial.number)
        return dropped
