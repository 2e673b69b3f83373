"""From a study and a profile to concrete runs: each arm's architecture for the data set, its training settings per
seed, and the data each seed sees.

Seeds pair across arms: run (arm, s) trains with seed s, on the validation split and training subset drawn with
seed s, so every arm of seed s sees the same images in the same order with the same augmentation, and its weights
start from the same random stream (a trial seeds the weight initialisation and the trainer the data order,
augmentation and dropout with the run's seed). Differences between arms at one seed are paired.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

from vitnas.errors import UserError
from vitnas.nas.ablation.overrides import apply_override
from vitnas.nas.ablation.study import DATA_FIELDS, Profile, Study
from vitnas.nas.data import Dataset, load_dataset
from vitnas.nas.data.dataset import stratified_holdout
from vitnas.nas.metrics import CHEAP
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.presets import load_preset
from vitnas.search_spaces.space import load_space


@dataclass(frozen=True)
class RunSpec:
    arm: str
    seed: int
    arch: dict  # ArchConfig.to_dict(), validated
    train: dict  # TrainSettings fields for this run (budget, recipe, seed)

    @property
    def key(self) -> str:
        """The executor's name for the run, unique in a study."""
        return f"{self.arm}/seed-{self.seed}"


def base_dict(study: Study, image_size: int, in_chans: int, num_classes: int) -> dict[str, Any]:
    """The base architecture as plain data, with the data set's shape (not yet validated for it)."""
    shape = {"image_size": image_size, "in_chans": in_chans, "num_classes": num_classes}
    if isinstance(study.base, dict):
        return {"name": study.name, **study.base, **shape}
    if study.base == "default":
        return load_space("metaformer").default_config(**shape).to_dict()
    config = load_preset(study.base.split(":", 1)[1]) if study.base.startswith("preset:") \
        else ArchConfig.from_yaml(study.base)
    return {**config.to_dict(), **shape}


def arm_config(study: Study, profile: Profile, arm: str, shape: tuple[int, int, int]) -> dict[str, Any]:
    """The arm's architecture for data of `shape` (image_size, in_chans, num_classes), validated; a mistake names
    the arm (or the profile's `set`) and the field."""
    config = copy.deepcopy(base_dict(study, *shape))  # overrides edit it in place; the study's base stays as read
    if isinstance(study.base, dict) and any(key in study.base for key in DATA_FIELDS):
        raise UserError("base: the data set decides image_size, in_chans and num_classes; leave them out")
    for path, value in profile.overrides:
        apply_override(config, path, value, f"profiles.{profile.name}.set")
    where = f"arms.{arm}"
    for path, value in study.arms[arm].overrides:
        apply_override(config, path, value, where)
    config["name"] = f"{study.name}.{arm}"
    try:
        return ArchConfig.from_dict(config).to_dict()
    except UserError as err:
        raise UserError(f"{where} (profile {profile.name}): {err}") from None


def train_fields(study: Study, profile: Profile, arm: str, seed: int) -> dict[str, Any]:
    return {**profile.train, **study.arms[arm].train, **profile.budget.to_dict(), "seed": seed}


def plan_runs(study: Study, profile: Profile, shape: tuple[int, int, int]) -> list[RunSpec]:
    """Every run, arm-major, each arm's config resolved (and so checked) once before anything trains."""
    configs = {arm: arm_config(study, profile, arm, shape) for arm in study.arms}
    return [RunSpec(arm, seed, configs[arm], train_fields(study, profile, arm, seed))
            for arm in study.arms for seed in profile.seeds]


def measurements(study: Study) -> frozenset[str]:
    """What each run measures: the cheap measurements and whatever the study's metrics need."""
    return CHEAP | {metric.measurement for metric in study.metrics}


def identity(study: Study, profile: Profile) -> dict[str, Any]:
    """What decides the runs' results, apart from the seeds: resuming under a different identity is refused."""
    base = study.base
    if isinstance(base, str) and base != "default":  # the config's content: an edited config file is a changed study
        base = {key: value for key, value in base_dict(study, 0, 0, 0).items() if key not in DATA_FIELDS}
    settings = {key: value for key, value in profile.to_dict().items() if key not in ("seeds", "name")}
    return {"base": base, "arms": {name: arm.to_dict() for name, arm in study.arms.items()},
            "profile": settings, "measurements": sorted(measurements(study))}


def training_subset(data: Dataset, count: int | None, seed: int) -> Dataset:
    """`count` training images chosen per class in proportion (stratified), by `seed`; all of them for None."""
    total = len(data.y_train)
    if count is None or count >= total:
        return data
    _, chosen = stratified_holdout(data.y_train.numpy(), count / total, seed)
    return dataclasses.replace(data, x_train=data.x_train[chosen], y_train=data.y_train[chosen])


def seed_datasets(profile: Profile) -> dict[str, Dataset]:
    """One data set per seed (its validation split and training subset drawn with that seed), keyed `seed-S`."""
    return {data_key(seed): training_subset(load_dataset(profile.data, seed=seed), profile.train_images, seed)
            for seed in profile.seeds}


def data_key(seed: int) -> str:
    return f"seed-{seed}"
