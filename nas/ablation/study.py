"""The study file (`studies/*.yaml`): a claim, a base architecture, named arms that override it, the comparisons
that decide the claim, and profiles (`quick` for CI, `full` for the real experiment).

Plain data a user copies and edits. Every mistake fails when the file is read, with one line naming the field (the
same rules as architecture configs), before any data is loaded or anything trains. Top-level run settings (`data`,
`budget`, `seeds`, `robustness`, `train`, `set`, `train_images`) are the defaults of every profile; a profile's own
key replaces the top-level one.
"""
from __future__ import annotations

import math
import re
import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vitnas.errors import UserError
from vitnas.nas.ablation.claims import Comparison, MetricRef, parse_expectation, parse_metric, suite_parts
from vitnas.nas.ablation.overrides import OverridePath, parse_path
from vitnas.nas.robustness.suite import parse_suite
from vitnas.nas.trainer import TrainSettings
from vitnas.search_spaces.checks import excerpt
from vitnas.search_spaces.config import read_yaml
from vitnas.search_spaces.presets import preset_names

SETTING_KEYS = ("data", "budget", "seeds", "robustness", "train", "set", "train_images")
STUDY_KEYS = ("name", "claim", "source", "published", "base", "reference", "arms", "expect", "metrics",
              *SETTING_KEYS, "profiles")
REQUIRED_PROFILES = ("quick", "full")
PUBLISHED_KEYS = ("data", "scale", "metric", "of", "values", "note")
# Training-recipe fields a study or an arm may set (`train.lr` in an arm); the budget, seed and device come from
# the study's `budget`, `seeds` and the command line.
TRAIN_KEYS = ("batch_size", "lr", "weight_decay", "warmup", "label_smoothing", "grad_clip", "crop_padding", "flip")
_INT_TRAIN_KEYS = ("batch_size", "crop_padding")
DATA_FIELDS = ("image_size", "in_chans", "num_classes")  # they come from the data set
MIN_SEEDS = 3
DEFAULT_SEEDS = 3
# arm, study and profile names double as folder names: not '.' or '..' (no leading dot), no line break, bounded
_NAME = re.compile(r"[A-Za-z0-9_=+-][A-Za-z0-9_.=+-]{0,99}")


@dataclass(frozen=True)
class Budget:
    """Training per run: `epochs` (every arm sees the data equally often; the default) or `seconds` (wall clock,
    which favours cheap models, so a study must ask for it)."""

    epochs: int | None = None
    seconds: float | None = None

    def to_dict(self) -> dict:
        return {"epochs": self.epochs} if self.epochs is not None else {"seconds": self.seconds}

    def describe(self) -> str:
        return f"{self.epochs} epochs" if self.epochs is not None else f"{self.seconds:g} s"


@dataclass(frozen=True)
class Profile:
    name: str
    data: str
    budget: Budget
    seeds: tuple[int, ...]
    robustness: str
    train: dict[str, Any]
    overrides: tuple[tuple[OverridePath, Any], ...]  # the `set` block: applied to the base before any arm
    train_images: int | None  # a seeded, stratified subset of the training images (None: all of them)

    def to_dict(self) -> dict:
        return {"name": self.name, "data": self.data, "budget": self.budget.to_dict(), "seeds": list(self.seeds),
                "robustness": self.robustness, "train": dict(self.train),
                "set": {path.text: value for path, value in self.overrides}, "train_images": self.train_images}


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: tuple[tuple[OverridePath, Any], ...]  # architecture paths
    train: dict[str, Any]  # `train.KEY` overrides

    def to_dict(self) -> dict:
        return {**{path.text: value for path, value in self.overrides},
                **{f"train.{key}": value for key, value in self.train.items()}}


@dataclass(frozen=True)
class Published:
    """The paper's figures beside ours, with the data set and scale they were measured at."""

    data: str
    scale: str
    metric: str = ""
    values: dict[str, float | None] | None = None
    note: str = ""
    of: str = "accuracy"  # which of our metrics the values stand beside (a comparison on another shows none)


@dataclass(frozen=True)
class Study:
    name: str
    claim: str
    source: str
    published: Published
    base: str | dict  # "default", "preset:NAME", a config file path, or an inline config mapping
    reference: str
    arms: dict[str, Arm]
    expect: tuple[Comparison, ...]
    metrics: tuple[MetricRef, ...]  # reported per arm: `metrics` then every metric `expect` uses
    profiles: dict[str, Profile]
    raw: dict  # the file as read, kept in the ablation's store so a report needs nothing else

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise UserError(f"--profile: study {self.name!r} has no profile {name!r}; it has "
                            f"{', '.join(self.profiles)}")
        return self.profiles[name]


# ---- reading

def shipped_dir() -> Path:
    """The studies that ship with vitnas (the repository's `studies/`, installed as package data)."""
    return Path(str(resources.files("vitnas.studies")))


def shipped_studies() -> list[Path]:
    return sorted(shipped_dir().glob("*.yaml"))


def find_study(name_or_path: str) -> Path:
    """A study file by path, or a shipped study by name (`poolformer-token-mixer`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_dir() / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(p.stem for p in shipped_studies())
    raise UserError(f"study {name_or_path!r}: no such file and no shipped study of that name; shipped: {names} "
                    "(`vitnas ablate list`)")


def load_study(name_or_path: str) -> Study:
    path = find_study(name_or_path)
    # the usual syntax slip in a study: a path key inside { }, where [ opens a list and * an alias
    data = read_yaml(path, "study file", "; quote keys such as 'stages[*].mixer' inside { }, or write them one per "
                                         "line")
    base = data.get("base") if isinstance(data, dict) else None
    if isinstance(base, str) and base.endswith((".yaml", ".yml")):
        # a base config file is relative to the study file, so a study and its config travel together
        resolved = (path.parent / base).resolve()
        if not resolved.is_file():
            raise _fail("base", base, f"no such config file (looked for {resolved})")
        data = {**data, "base": str(resolved)}
    return study_from_dict(data)


def study_from_dict(data: Any) -> Study:
    if not isinstance(data, dict):
        raise UserError(f"study: got {data!r}; expected a mapping of keys (name, claim, base, arms, expect, ...)")
    for key in data:
        if key not in STUDY_KEYS:
            raise UserError(f"{key}: unknown key; allowed keys: {', '.join(STUDY_KEYS)}")
    for key in ("name", "claim", "source", "published", "base", "reference", "arms", "expect", "profiles"):
        if key not in data:
            raise UserError(f"{key}: missing; it is required")
    name = _name("name", data["name"])
    claim = _text("claim", data["claim"])
    if "\n" in claim.strip():
        raise UserError("claim: write the claim as one sentence on one line")
    arms = _arms(data["arms"])
    reference = data["reference"]
    if reference not in arms:
        raise UserError(f"reference: got {reference!r}; it must be one of the arms: {', '.join(arms)}")
    expect = _expect(data["expect"], arms)
    metrics = _metrics(data.get("metrics", ["accuracy"]), expect)
    profiles = _profiles(data, metrics)
    return Study(name=name, claim=claim.strip(), source=_text("source", data["source"]),
                 published=_published(data["published"], arms, metrics), base=_base(data["base"]), reference=reference,
                 arms=arms, expect=expect, metrics=metrics, profiles=profiles, raw=data)


def _fail(where: str, value: Any, allowed: str) -> UserError:
    return UserError(f"{where}: got {excerpt(value)}; {allowed}")


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, value, "allowed: a non-empty string")
    return value


def _name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _fail(where, value, "allowed: up to 100 letters, digits and _ . = + -, not starting with '.' (it names "
                    "a folder)")
    return value


def _mapping(where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise _fail(where, value, "expected a mapping of keys to values")
    return value


def _base(value: Any) -> str | dict:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not (value == "default" or value.startswith("preset:")
                                          or value.endswith((".yaml", ".yml"))):
        raise _fail("base", value, "allowed: default (the space's default for the data set), preset:NAME, a config "
                    "file (.yaml, relative to the study file) or an inline config mapping")
    if value.startswith("preset:") and value[len("preset:"):] not in preset_names():
        raise _fail("base", value, f"allowed presets: {', '.join(preset_names())}")
    return value


def _arms(value: Any) -> dict[str, Arm]:
    value = _mapping("arms", value)
    if len(value) < 2:
        raise _fail("arms", value, "a study compares at least two arms")
    return {_name(f"arms.{name}", name): _arm(name, overrides) for name, overrides in value.items()}


def _arm(name: str, value: Any) -> Arm:
    where = f"arms.{name}"
    value = _mapping(where, {} if value is None else value)
    overrides, train = _overrides(where, value, allow_train=True)
    return Arm(name, overrides, train)


def _overrides(where: str, value: dict, *, allow_train: bool) -> tuple[tuple, dict]:
    """Architecture overrides and (in an arm) `train.KEY` overrides, each path parsed and checked."""
    overrides, train = [], {}
    for text, setting in value.items():
        path = parse_path(text, where)
        if path.root == "train" and allow_train:
            if len(path.segments) != 2 or path.segments[1].select is not None:
                raise UserError(f"{where}: {text}: write train.KEY with KEY one of {', '.join(TRAIN_KEYS)}")
            train.update(_train(f"{where}: train", {path.segments[1].key: setting}))
        elif path.root in DATA_FIELDS:
            raise UserError(f"{where}: {text}: the data set decides image_size, in_chans and num_classes")
        else:
            overrides.append((path, setting))
    return tuple(overrides), train


def _train(where: str, value: Any) -> dict[str, Any]:
    value = _mapping(where, value)
    for key, setting in value.items():
        if key not in TRAIN_KEYS:
            raise UserError(f"{where}.{key}: unknown training setting; allowed: {', '.join(TRAIN_KEYS)}")
        if key == "flip":
            ok = setting is None or isinstance(setting, bool)
        elif key in _INT_TRAIN_KEYS:
            ok = (setting is None and key == "crop_padding") or (isinstance(setting, int)
                                                                  and not isinstance(setting, bool) and setting >= 0)
        else:
            ok = isinstance(setting, (int, float)) and not isinstance(setting, bool) and math.isfinite(setting)
        if not ok:
            raise _fail(f"{where}.{key}", setting, "allowed: true/false/null" if key == "flip" else
                        "allowed: a non-negative integer" if key in _INT_TRAIN_KEYS else "allowed: a number")
    try:
        TrainSettings(**value)
    except UserError as err:
        raise UserError(f"{where}: got {value!r}; {err}") from None
    return dict(value)


def _expect(value: Any, arms: dict[str, Arm]) -> tuple[Comparison, ...]:
    if not isinstance(value, list) or not value:
        raise _fail("expect", value, "expected a list of comparisons such as 'accuracy: identity < pool'")
    comparisons = []
    for i, item in enumerate(value):
        for comparison in parse_expectation(item, f"expect[{i}]"):
            for arm in (comparison.left, comparison.right):
                if arm not in arms:
                    raise UserError(f"expect[{i}]: {arm!r} is not an arm; arms: {', '.join(arms)}")
            if comparison.left == comparison.right:
                raise UserError(f"expect[{i}]: {comparison.text} compares an arm with itself")
            comparisons.append(comparison)
    return tuple(comparisons)


def _metrics(value: Any, expect: tuple[Comparison, ...]) -> tuple[MetricRef, ...]:
    if not isinstance(value, list) or not value:
        raise _fail("metrics", value, "expected a list of metric names, e.g. [accuracy, params]")
    metrics = [parse_metric(item, f"metrics[{i}]") for i, item in enumerate(value)]
    for comparison in expect:
        if comparison.metric not in metrics:
            metrics.append(comparison.metric)
    return tuple(dict.fromkeys(metrics))


def _published(value: Any, arms: dict[str, Arm], metrics: tuple[MetricRef, ...]) -> Published:
    value = _mapping("published", value)
    for key in value:
        if key not in PUBLISHED_KEYS:
            raise UserError(f"published.{key}: unknown key; allowed keys: {', '.join(PUBLISHED_KEYS)}")
    for key in ("data", "scale"):
        if key not in value:
            raise UserError(f"published.{key}: missing; say which data set and model scale the paper measured")
    values = value.get("values")
    if values is not None:
        for arm, figure in _mapping("published.values", values).items():
            if arm not in arms:
                raise UserError(f"published.values.{arm}: not an arm; arms: {', '.join(arms)}")
            if figure is not None and (isinstance(figure, bool) or not isinstance(figure, (int, float))):
                raise _fail(f"published.values.{arm}", figure, "allowed: a number, or null where the paper has none")
    of = value.get("of", "accuracy")
    if "of" in value and of not in (names := [metric.text for metric in metrics]):
        raise _fail("published.of", of, f"allowed: one of the study's metrics ({', '.join(names)})")
    return Published(data=_text("published.data", value["data"]), scale=_text("published.scale", value["scale"]),
                     metric=str(value.get("metric", "")), values=values, note=str(value.get("note", "")), of=of)


def _profiles(data: dict, metrics: tuple[MetricRef, ...]) -> dict[str, Profile]:
    value = _mapping("profiles", data["profiles"])
    for required in REQUIRED_PROFILES:
        if required not in value:
            raise UserError(f"profiles.{required}: missing; every study has a quick (CI, minutes on 2 cores) and a "
                            "full profile")
    return {_name(f"profiles.{name}", name): _profile(name, _mapping(f"profiles.{name}", {} if spec is None else spec),
                                                     data, metrics)
            for name, spec in value.items()}


def _profile(name: str, spec: dict, top: dict, metrics: tuple[MetricRef, ...]) -> Profile:
    for key in spec:
        if key not in SETTING_KEYS:
            raise UserError(f"profiles.{name}.{key}: unknown key; allowed keys: {', '.join(SETTING_KEYS)}")

    def setting(key: str, default: Any = None) -> tuple[str, Any]:
        where = f"profiles.{name}.{key}" if key in spec else key
        if key in spec:
            return where, spec[key]
        if key in top:
            return where, top[key]
        if default is None and key in ("data", "budget"):
            raise UserError(f"profiles.{name}.{key}: missing; give {key} at the top level or in the profile")
        return where, default

    where, robustness = setting("robustness", "none")
    robustness = _suite(where, robustness, metrics)
    set_where, set_value = setting("set", {})
    overrides, _ = _overrides(set_where, _mapping(set_where, set_value or {}), allow_train=False)
    return Profile(name=name, data=_text(*setting("data")), budget=_budget(*setting("budget")),
                   seeds=_seeds(*setting("seeds", DEFAULT_SEEDS)), robustness=robustness,
                   train=_train(*setting("train", {})), overrides=overrides,
                   train_images=_train_images(*setting("train_images", 0)))


def _budget(where: str, value: Any) -> Budget:
    hint = ("give {epochs: N} (every arm sees the data equally often) or {seconds: S} (equal wall clock, which "
            "favours cheap models)")
    if not isinstance(value, dict) or len(value) != 1 or not set(value) <= {"epochs", "seconds"}:
        raise _fail(where, value, hint)
    ((kind, amount),) = value.items()
    if kind == "epochs" and (isinstance(amount, bool) or not isinstance(amount, int) or amount < 1):
        raise _fail(f"{where}.epochs", amount, "allowed: an integer >= 1")
    if kind == "seconds" and (isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0):
        raise _fail(f"{where}.seconds", amount, "allowed: a number > 0")
    return Budget(**{kind: amount})


def _seeds(where: str, value: Any) -> tuple[int, ...]:
    seeds = list(range(value)) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(seeds, list) or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise _fail(where, value, "allowed: a count, or a list of distinct seeds >= 0")
    if len(seeds) < MIN_SEEDS:
        raise _fail(where, value, f"a confidence interval needs at least {MIN_SEEDS} seeds")
    return tuple(seeds)


def _suite(where: str, value: Any, metrics: tuple[MetricRef, ...]) -> str:
    if not isinstance(value, str):
        raise _fail(where, value, "allowed: a robustness suite such as none, default or 'highfreq:0.08;fgsm:1'")
    try:
        parse_suite(value)
    except UserError as err:
        raise UserError(f"{where}: {err}") from None
    measured = suite_parts(value)
    for metric in metrics:
        if metric.part is not None and metric.part not in measured:
            raise UserError(f"{where}: {value!r} does not measure {metric.part}, which metric {metric.text!r} needs; "
                            "add that part to the suite")
    return value


def _train_images(where: str, value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, value, "allowed: an integer >= 1 (a training subset), or 0 for every training image")
    return value or None


def profile_with_seeds(profile: Profile, seeds: int | list[int] | None) -> Profile:
    """The profile with other seeds: `--seeds N` (seeds 0..N-1) or a stored list; None keeps its own."""
    return profile if seeds is None else dataclasses.replace(profile, seeds=_seeds("--seeds", seeds))
