"""Search spaces as data: read a space file, suggest valid configs from it, give the default for a data set.

`Space.suggest` takes anything with Optuna's trial methods (suggest_categorical / suggest_float), so a search passes
an Optuna trial and `vitnas space sample` passes a seeded `RandomSuggester`. Optuna wants one parameter name to keep
one choice list within a study: when a rule drops choices (for this image size, this width, ...), the parameter name
carries the remaining list, e.g. `s0.head_dim[16,32]`, so equal names always mean equal lists.
"""
from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vitnas.errors import UserError
from vitnas.search_spaces.checks import excerpt
from vitnas.search_spaces.config import (BLOCKS, DOWNSAMPLES, HEADS, MAX_STAGES, PAIRING_DOWNSAMPLES, STEMS,
                                         ArchConfig, MixerConfig, StageConfig, StemConfig, read_yaml, stage_grids)
from vitnas.search_spaces.registry import ACTS, MIXERS, NORMS, ChoiceDim, RangeDim

SPACE_DIR = Path(__file__).parent


def dimensions() -> dict[str, ChoiceDim | RangeDim]:
    """Every dimension a space file may give: the model's, with each registered mixer kind's own after `mixer` (read
    when a space loads, so a kind registered later is offered too). A default is the one choice a file without the
    dimension gets: the behaviour from before the dimension existed, so copied space files keep working."""
    dims = {d.name: d for d in (
        ChoiceDim("num_stages", 1, vocabulary=tuple(range(1, MAX_STAGES + 1))),
        ChoiceDim("stem", "patch", vocabulary=STEMS),
        ChoiceDim("patch_size", 16, number=int),
        ChoiceDim("stem_act_norm", False, vocabulary=(False, True)),
        ChoiceDim("stem_norm", False, vocabulary=(False, True)),
        ChoiceDim("width", 64, number=int),
        ChoiceDim("depth", 1, number=int),
        ChoiceDim("mixer", "pool", vocabulary=MIXERS.names()))}
    for name, kind in MIXERS.items():
        for dim in kind.dimensions:  # kinds may share a dimension (one list of head_dim), never redefine it
            if dims.setdefault(dim.name, dim) != dim:
                raise ValueError(f"mixer {name!r} declares space dimension {dim.name!r} unlike an earlier one")
    for dim in (ChoiceDim("block", "metaformer", vocabulary=BLOCKS),
                ChoiceDim("norm", "layernorm", vocabulary=NORMS.names()),
                ChoiceDim("act", "gelu", vocabulary=ACTS.names()),
                ChoiceDim("mlp_ratio", 4.0),
                ChoiceDim("layer_scale", None, nullable=True),
                RangeDim("drop_path", 0.0),
                ChoiceDim("head", "gap", vocabulary=HEADS),
                ChoiceDim("pos_embed", False, vocabulary=(False, True)),
                ChoiceDim("downsample", "conv", vocabulary=DOWNSAMPLES),
                ChoiceDim("mlp_bias", True, vocabulary=(False, True)),
                ChoiceDim("head_mlp_ratio", None, nullable=True),
                ChoiceDim("res_scale", None, nullable=True),
                ChoiceDim("stage_pos_embed", False, vocabulary=(False, True))):
        dims[dim.name] = dim
    return dims


class Suggester(Protocol):
    """The part of optuna.Trial a space needs."""

    def suggest_categorical(self, name: str, choices: list) -> Any: ...

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...


class RandomSuggester:
    """A seeded stand-in for an Optuna trial: uniform choices, uniform or log-uniform floats."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.params: dict[str, Any] = {}

    def suggest_categorical(self, name: str, choices: list) -> Any:
        self.params[name] = self.rng.choice(list(choices))
        return self.params[name]

    def suggest_int(self, name: str, low: int, high: int, step: int = 1) -> int:
        self.params[name] = self.rng.randrange(low, high + 1, step)
        return self.params[name]

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        value = math.exp(self.rng.uniform(math.log(low), math.log(high))) if log else self.rng.uniform(low, high)
        self.params[name] = value
        return value


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Space:
    name: str
    choices: dict[str, tuple]  # categorical dimensions
    ranges: dict[str, FloatRange]  # float dimensions
    max_tokens: dict[str, int]  # mixer kind -> most tokens it is offered for
    default: dict[str, Any]  # the default config, without data fields and stem.patch_size

    # ---- suggesting
    def suggest(self, trial: Suggester, image_size: int, in_chans: int, num_classes: int) -> ArchConfig:
        pick = _Picker(trial)
        downsamples = self.choices["downsample"]
        # patch sizes must divide the image and leave a grid that some listed stage count can halve
        patches = {kind: [p for p in _patches(self.choices["patch_size"], kind, image_size)
                          if set(_stage_counts(image_size // p, downsamples)) & set(self.choices["num_stages"])]
                   for kind in self.choices["stem"]}
        stems = [s for s in self.choices["stem"] if patches[s]]
        if not stems:
            raise UserError(f"space {self.name}: no patch_size in {list(self.choices['patch_size'])} fits "
                            f"{image_size}x{image_size} images with num_stages {list(self.choices['num_stages'])}; "
                            f"add a divisor of {image_size}")
        stem_kind = pick("stem", self.choices["stem"], stems)
        patch = pick(f"patch_size.{stem_kind}", self.choices["patch_size"], patches[stem_kind])
        act_norm = pick("stem_act_norm", self.choices["stem_act_norm"])
        stem_norm = pick("stem_norm", self.choices["stem_norm"], [False] if act_norm else None)
        stem = StemConfig(stem_kind, patch, act_norm, stem_norm)
        grid = image_size // patch
        num_stages = pick("num_stages", self.choices["num_stages"], _stage_counts(grid, downsamples))
        grids = stage_grids(grid, num_stages)
        stages = tuple(self._suggest_stage(pick, i, g) for i, g in enumerate(grids))
        kinds = [MIXERS[s.mixer.kind] for s in stages]
        heads = [h for h in HEADS if h != "cls" or (len(kinds) == 1 and kinds[0].cls_token)]
        head = pick("head", self.choices["head"], heads)
        pos_embed = pick("pos_embed", self.choices["pos_embed"]) if any(k.pos_embed for k in kinds) else False
        cfg = ArchConfig(
            name="sampled", image_size=image_size, in_chans=in_chans, num_classes=num_classes, stem=stem,
            stages=stages, block=pick("block", self.choices["block"]), norm=pick("norm", self.choices["norm"]),
            act=pick("act", self.choices["act"]), mlp_ratio=pick("mlp_ratio", self.choices["mlp_ratio"]),
            layer_scale=pick("layer_scale", self.choices["layer_scale"]),
            drop_path=pick.float("drop_path", self.ranges["drop_path"]), head=head, pos_embed=pos_embed)
        return self._suggest_later_dimensions(pick, cfg, grids)

    def _suggest_later_dimensions(self, pick: _Picker, cfg: ArchConfig, grids: list[int]) -> ArchConfig:
        """The dimensions added after the first release, drawn after the others so that a space file without them
        suggests what it always did: downsampling, MLP biases, the MLP head, residual scales (metaformer blocks
        only) and stage position embeddings (after the first stage, for position-blind mixers)."""
        downsample = pick("downsample", self.choices["downsample"], _downsamples_for(grids, self.choices["downsample"]))
        mlp_head = pick("head_mlp_ratio", self.choices["head_mlp_ratio"])
        stages = tuple(dataclasses.replace(
            stage,
            res_scale=pick(f"s{i}.res_scale", self.choices["res_scale"]) if cfg.block == "metaformer" else None,
            pos_embed=(pick(f"s{i}.stage_pos_embed", self.choices["stage_pos_embed"])
                       if i > 0 and MIXERS[stage.mixer.kind].pos_embed else False))
            for i, stage in enumerate(cfg.stages))
        return dataclasses.replace(cfg, stages=stages, downsample=downsample, head_mlp_ratio=mlp_head,
                                   mlp_bias=pick("mlp_bias", self.choices["mlp_bias"]))

    def _suggest_stage(self, pick: _Picker, i: int, grid: int) -> StageConfig:
        width = pick(f"s{i}.width", self.choices["width"])
        depth = pick(f"s{i}.depth", self.choices["depth"])
        fitting = {k: self._fitting(k, width, grid) for k in self.choices["mixer"]}
        kinds = [k for k, fit in fitting.items()
                 if fit is not None and grid * grid <= self.max_tokens.get(k, grid * grid)]
        kind = pick(f"s{i}.mixer", self.choices["mixer"], kinds)
        settings = {dim.key: pick.float(f"s{i}.{dim.name}", self.ranges[dim.name]) if isinstance(dim, RangeDim)
                    else pick(f"s{i}.{dim.name}", self.choices[dim.name], fitting[kind][dim.name])
                    for dim in MIXERS[kind].dimensions}
        return StageConfig(depth=depth, width=width, mixer=MixerConfig(kind, settings))

    def _fitting(self, kind: str, width: int, grid: int) -> dict[str, list] | None:
        """The choices of each of a mixer kind's categorical dimensions that fit a stage; None when one has none."""
        fitting = {}
        for dim in MIXERS[kind].dimensions:
            if isinstance(dim, ChoiceDim):
                listed = self.choices[dim.name]
                fitting[dim.name] = [c for c in listed if dim.fits(c, width, grid)] if dim.fits else list(listed)
                if not fitting[dim.name]:
                    return None
        return fitting

    def sample(self, n: int, seed: int, image_size: int, in_chans: int, num_classes: int) -> list[ArchConfig]:
        """`n` configs, reproducible for a seed (config k uses seed `seed * 1_000_003 + k`)."""
        return [self.suggest(RandomSuggester(seed * 1_000_003 + k), image_size, in_chans, num_classes)
                for k in range(n)]

    # ---- the default
    def default_config(self, image_size: int, in_chans: int, num_classes: int) -> ArchConfig:
        """The default architecture for a data set: the space file's `default` with a patch size fitted to the image
        (largest power of two keeping an 8x8 token grid, image/2 for images under 16 pixels; a plain 1x1 patch stem
        when no power of two divides the image) and only as many stages as the grid can halve."""
        data = {**self.default, "image_size": image_size, "in_chans": in_chans, "num_classes": num_classes}
        target = 8 if image_size >= 16 else max(1, image_size // 2)
        powers = [p for p in (2 ** k for k in range(1, 12)) if image_size % p == 0 and image_size // p >= target]
        stem = dict(data.get("stem", {}))
        if powers:
            stem["patch_size"] = max(powers)
        else:
            stem.update(kind="patch", patch_size=1)
        data["stem"] = stem
        grid = image_size // stem["patch_size"]
        stages = data["stages"]
        data["stages"] = [s for i, s in enumerate(stages) if i == 0 or stage_grids(grid, i + 1)[-2] >= 2]
        return ArchConfig.from_dict(data)

    # ---- reading and showing
    def to_dict(self) -> dict[str, Any]:
        ranges = {k: {"low": r.low, "high": r.high, "log": r.log} for k, r in self.ranges.items()}
        dims = {k: list(self.choices[k]) if k in self.choices else ranges[k] for k in dimensions()
                if k in self.choices or k in ranges}
        return {"name": self.name, "dimensions": dims, "max_tokens": dict(self.max_tokens), "default": self.default}


class _Picker:
    """Asks the suggester for one choice, naming the parameter after the remaining choices when a rule dropped some."""

    def __init__(self, trial: Suggester):
        self.trial = trial

    def __call__(self, name: str, listed: tuple, allowed: list | None = None) -> Any:
        allowed = list(listed) if allowed is None else [c for c in listed if c in allowed]
        if len(allowed) < len(listed):
            name = f"{name}[{','.join(map(str, allowed))}]"
        if not allowed:
            raise UserError(f"space: no choice of {name.split('[')[0]} in {list(listed)} fits this model and data "
                            "set; widen that list in the space file")
        if len(allowed) == 1:
            return allowed[0]  # nothing to choose: no parameter, as Optuna's conditional spaces do
        return self.trial.suggest_categorical(name, allowed)

    def float(self, name: str, rng: FloatRange) -> float:
        if rng.low == rng.high:
            return rng.low
        return self.trial.suggest_float(name, rng.low, rng.high, log=rng.log)


def _patches(listed: tuple, stem_kind: str, image_size: int) -> list[int]:
    ok = [p for p in listed if image_size % p == 0]
    return [p for p in ok if p >= 2 and p & (p - 1) == 0] if stem_kind == "conv" else ok


def _stage_counts(grid: int, downsamples: tuple) -> list[int]:
    """Stage counts a grid allows: every downsampling needs a grid of at least 2x2 to halve, and one of the listed
    downsampling kinds must take the grids it halves (the 2x2 ones need even grids)."""
    return [n for n in range(1, MAX_STAGES + 1)
            if n == 1 or (stage_grids(grid, n)[-2] >= 2 and _downsamples_for(stage_grids(grid, n), downsamples))]


def _downsamples_for(grids: list[int], listed: tuple) -> list[str]:
    """The listed downsampling kinds that can halve each of these stage grids but the last."""
    even = all(g % 2 == 0 for g in grids[:-1])
    return [d for d in listed if even or d not in PAIRING_DOWNSAMPLES]


def load_space(name_or_path: str | Path) -> Space:
    """A shipped space by name (`metaformer`) or a space file a user copied and narrowed."""
    path = SPACE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        path = Path(name_or_path)
    if not path.is_file():
        shipped = sorted(p.stem for p in SPACE_DIR.glob("*.yaml"))
        raise UserError(f"space: got {str(name_or_path)!r}; allowed: {', '.join(shipped)} or a path to a space file")
    return space_from_dict(read_yaml(path, "space file"), source=str(path))


def space_from_dict(data: Any, source: str = "space") -> Space:
    """A space from a space file's mapping. A dimension the file leaves out takes its one default choice (see
    `dimensions`); a dimension this release does not know is an error."""
    if not isinstance(data, dict) or not isinstance(data.get("dimensions"), dict):
        raise UserError(f"{source}: expected a mapping with a `dimensions` mapping")
    given, known = data["dimensions"], dimensions()
    for key in given:
        if key not in known:
            raise UserError(f"{source}: dimensions.{key}: unknown dimension; allowed: {', '.join(sorted(known))}")
    choices = {k: _read_choices(f"{source}: dimensions.{k}", d, given[k]) if k in given else (d.default,)
               for k, d in known.items() if isinstance(d, ChoiceDim)}
    ranges = {k: _read_range(f"{source}: dimensions.{k}", given[k]) if k in given
              else FloatRange(d.default, d.default) for k, d in known.items() if isinstance(d, RangeDim)}
    for name, values in _listed_numbers(choices, ranges):
        for value in values:
            problem = _config_problem(name, value, choices)
            if problem is not None:
                raise UserError(f"{source}: dimensions.{name}: {excerpt(value)} is outside what a config allows "
                                f"({problem}); narrow the list or range")
    max_tokens = data.get("max_tokens", {})
    if not isinstance(max_tokens, dict) or any(k not in MIXERS or not isinstance(v, int) for k, v in max_tokens.items()):
        raise UserError(f"{source}: max_tokens: got {excerpt(max_tokens)}; allowed: a mapping from a mixer kind to "
                        "an integer")
    default = data.get("default", {})
    if not isinstance(default, dict) or "stages" not in default:
        raise UserError(f"{source}: default: expected a config mapping with `stages` (everything but image_size, "
                        "in_chans, num_classes and stem.patch_size)")
    return Space(str(data.get("name", Path(source).stem)), choices, ranges, max_tokens, default)


def _read_choices(where: str, dim: ChoiceDim, value: Any) -> tuple:
    if not isinstance(value, list) or not value:
        raise UserError(f"{where}: got {excerpt(value)}; allowed: a non-empty list of choices")
    for choice in value:
        allowed = dim.problem(choice)
        if allowed is not None:
            raise UserError(f"{where}: got {excerpt(choice)}; allowed: {allowed}")
    return tuple(dim.read(choice) for choice in value)


def _read_range(where: str, value: Any) -> FloatRange:
    ok = isinstance(value, dict) and set(value) <= {"low", "high", "log"} and {"low", "high"} <= set(value)
    ok = ok and all(isinstance(value[b], (int, float)) for b in ("low", "high")) and value["low"] <= value["high"]
    if not ok or (value.get("log") and value["low"] <= 0):
        raise UserError(f"{where}: got {excerpt(value)}; allowed: {{low: L, high: H, log: false}} with L <= H "
                        "(L > 0 when log)")
    return FloatRange(float(value["low"]), float(value["high"]), bool(value.get("log", False)))


# Where a numeric dimension lands in a suggested config (Space.suggest), with what else the field needs to be
# checked (an MLP head is drawn for pooled heads only); mixer dimensions land in the mixer's settings. patch_size
# is left out: suggest keeps only the patch sizes that divide the image.
_MODEL_FIELDS = {"mlp_ratio": {}, "layer_scale": {}, "drop_path": {}, "head_mlp_ratio": {"head": "pooled"}}
_STAGE_FIELDS = ("width", "depth", "res_scale")


def _listed_numbers(choices: dict[str, tuple], ranges: dict[str, FloatRange]) -> list[tuple[str, tuple]]:
    """Each numeric dimension with the values a search may draw from it: its choices, or both ends of its range."""
    dims = dimensions()
    listed = [(k, v) for k, v in choices.items() if not dims[k].vocabulary and k != "patch_size"]
    return listed + [(k, (r.low, r.high)) for k, r in ranges.items()]


def _config_problem(name: str, value: Any, choices: dict[str, tuple]) -> str | None:
    """The config's own complaint about `value` in dimension `name`, or None when a config accepts it. Checked when
    a space is read, so a value no config accepts (drop_path 0.95) stops `space show`, not a search at trial 11."""
    if name not in (*_MODEL_FIELDS, *_STAGE_FIELDS):
        return _mixer_problem(name, value, choices)
    probe = ArchConfig(name="probe", image_size=16, in_chans=1, num_classes=2, stem=StemConfig("patch", 4),
                       stages=(StageConfig(1, 8, MixerConfig("identity")),))
    try:
        if name in _MODEL_FIELDS:
            dataclasses.replace(probe, **_MODEL_FIELDS[name], **{name: value})
        else:
            dataclasses.replace(probe, stages=(dataclasses.replace(probe.stages[0], **{name: value}),))
    except UserError as err:
        return str(err)
    return None


def _mixer_problem(name: str, value: Any, choices: dict[str, tuple]) -> str | None:
    """A mixer dimension's value checked by each listed mixer kind that draws it. Its rules may depend on the
    stage's width and grid (head_dim must divide the width), which the dimension's `fits` mirrors: the value is
    tried in stages it fits, and only a complaint naming its own setting counts (another setting's default may not
    fit that stage)."""
    own = [value] if isinstance(value, int) and not isinstance(value, bool) and value > 0 else []
    stages = [(width, grid) for width in (*choices["width"], *own) for grid in (*own, 8, *range(1, 65))]
    for kind_name in choices["mixer"]:
        kind = MIXERS[kind_name]
        dim = next((d for d in kind.dimensions if d.name == name), None)
        if dim is None:
            continue
        settings = {**kind.settings, **{d.key: d.default for d in kind.dimensions}, dim.key: value}
        for width, grid in stages:
            if isinstance(dim, ChoiceDim) and dim.fits is not None and not dim.fits(value, width, grid):
                continue
            try:
                kind.validate(settings, width, grid, "mixer")
                break
            except UserError as err:
                if str(err).startswith(f"mixer.{dim.key}:"):
                    return str(err)
    return None
