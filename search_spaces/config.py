"""The typed architecture config: frozen dataclasses, validated once when made, YAML/JSON friendly.

A config is plain data: `ArchConfig.from_dict(yaml.safe_load(...))` reads one, `.to_dict()` writes one back.
Every validation failure is a `UserError` with one line naming the field, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vitnas.errors import UserError

STEMS = ("patch", "overlap", "conv")
MIXERS = ("attention", "pool", "mlp", "conv", "identity")
NORMS = ("layernorm", "batchnorm", "groupnorm", "rmsnorm", "none")
ACTS = ("gelu", "relu", "silu")
BLOCKS = ("metaformer", "convmixer")
HEADS = ("gap", "cls")
MAX_STAGES = 4

# Which mixer fields mean something for which kind; a key outside its kind is a mistake worth reporting.
MIXER_KEYS = {
    "attention": ("heads", "head_dim", "qkv_bias", "temperature"),
    "pool": ("kernel_size",),
    "conv": ("kernel_size",),
    "mlp": ("token_mlp_ratio",),
    "identity": (),
}
SPATIAL_MIXERS = ("pool", "conv")  # need the 2-D token grid, so no CLS token next to them


def _fail(field_name: str, value: Any, allowed: str) -> UserError:
    return UserError(f"{field_name}: got {value!r}; {allowed}")


def _check_choice(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise _fail(field_name, value, f"allowed: {', '.join(choices)}")


def _check_int(field_name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise _fail(field_name, value, f"allowed: {bound}")


def _check_float(field_name: str, value: Any, low: float, high: float | None = None, *, open_low=False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        lower = f"> {low}" if open_low else f">= {low}"
        raise _fail(field_name, value, f"allowed: a number {lower}" + (f" and <= {high}" if high is not None else ""))


def _check_keys(where: str, data: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    if not isinstance(data, dict):
        raise _fail(where or "config", data, "expected a mapping of keys to values")
    prefix = f"{where}." if where else ""
    for key in data:
        if key not in allowed:
            raise _fail(f"{prefix}{key}", data[key], f"unknown key; allowed keys: {', '.join(allowed)}")
    for key in required:
        if key not in data:
            raise UserError(f"{prefix}{key}: missing; it is required")


@dataclass(frozen=True)
class StemConfig:
    """How pixels become tokens: `patch` (p x p conv, stride p), `overlap` ((2p-1)x(2p-1) conv, stride p, padding
    p//2: PoolFormer's 7x7/4 for p=4), `conv` (log2(p) 3x3 stride-2 convs with BN+ReLU then a 1x1 conv, Xiao et al.
    2021). `act_norm` adds the activation then the model's norm after the stem (ConvMixer)."""
    kind: str = "patch"
    patch_size: int = 16
    act_norm: bool = False


@dataclass(frozen=True)
class MixerConfig:
    """The token mixer of a stage; only the fields of its kind matter (see MIXER_KEYS).

    attention: `heads` or `head_dim` (exactly one), `qkv_bias`, softmax `temperature` (logits / (sqrt(d) * T)).
    pool: average pool of `kernel_size`, stride 1, minus the input (PoolFormer). conv: depthwise conv of `kernel_size`.
    mlp: MLP across tokens with hidden size `token_mlp_ratio` x width (MLP-Mixer: 0.5). identity: nothing.
    """
    kind: str = "pool"
    heads: int | None = None
    head_dim: int | None = None
    qkv_bias: bool = True
    temperature: float = 1.0
    kernel_size: int = 3
    token_mlp_ratio: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        keys = [k for k in MIXER_KEYS[self.kind] if getattr(self, k) is not None]
        return {"kind": self.kind, **{k: getattr(self, k) for k in keys}}


@dataclass(frozen=True)
class StageConfig:
    """`depth` blocks of `width` channels with one token mixer; stages after the first start with a 3x3 stride-2
    conv that halves the grid (PoolFormer's downsampling)."""
    depth: int = 1
    width: int = 64
    mixer: MixerConfig = field(default_factory=MixerConfig)


@dataclass(frozen=True)
class ArchConfig:
    """One model. `block` picks the block wiring (see blocks.MetaFormerBlock): `metaformer` is pre-norm
    x + mixer(norm(x)), x + mlp(norm(x)) with optional layer scale; `convmixer` is x + norm(act(mixer(x))) then
    norm(act(pointwise(x))) without residual (mlp_ratio and layer_scale unused)."""
    name: str = "custom"
    image_size: int = 224
    in_chans: int = 3
    num_classes: int = 1000
    stem: StemConfig = field(default_factory=StemConfig)
    stages: tuple[StageConfig, ...] = (StageConfig(),)
    block: str = "metaformer"
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    act: str = "gelu"
    mlp_ratio: float = 4.0
    layer_scale: float | None = None
    drop_path: float = 0.0
    head: str = "gap"
    final_norm: bool = True
    pos_embed: bool = False

    def __post_init__(self) -> None:
        _validate(self)

    # ---- derived facts the builder and the cost model share
    @property
    def stem_grid(self) -> int:
        """Side of the token grid after the stem."""
        return self.image_size // self.stem.patch_size

    def stage_grids(self) -> list[int]:
        """Side of the token grid in each stage (3x3 stride-2 padding-1 downsampling gives ceil(g / 2))."""
        grids = [self.stem_grid]
        for _ in self.stages[1:]:
            grids.append((grids[-1] + 1) // 2)
        return grids

    # ---- conversions
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchConfig:
        top = tuple(f.name for f in dataclasses.fields(cls))
        _check_keys("", data, top, required=("stages",))
        stem_data = data.get("stem", {})
        _check_keys("stem", stem_data, tuple(f.name for f in dataclasses.fields(StemConfig)))
        stages_data = data["stages"]
        if not isinstance(stages_data, (list, tuple)) or not stages_data:
            raise _fail("stages", stages_data, f"allowed: a list of 1 to {MAX_STAGES} stages")
        stages = tuple(_stage_from_dict(i, s) for i, s in enumerate(stages_data))
        rest = {k: v for k, v in data.items() if k not in ("stem", "stages")}
        return cls(stem=StemConfig(**stem_data), stages=stages, **rest)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["stem"] = dataclasses.asdict(self.stem)
        out["stages"] = [{"depth": s.depth, "width": s.width, "mixer": s.mixer.to_dict()} for s in self.stages]
        return out

    @classmethod
    def from_yaml(cls, path: str | Path) -> ArchConfig:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as err:
            raise UserError(f"config file {str(path)!r}: cannot read it ({err.strerror})") from None
        except yaml.YAMLError as err:
            raise UserError(f"config file {str(path)!r}: not valid YAML ({str(err).splitlines()[0]})") from None
        return cls.from_dict(data)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_data(self, *, image_size: int | None = None, in_chans: int | None = None,
                  num_classes: int | None = None) -> ArchConfig:
        """The same architecture for another data set (validated again: the patch must still divide the image)."""
        changes = {"image_size": image_size, "in_chans": in_chans, "num_classes": num_classes}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _stage_from_dict(index: int, data: Any) -> StageConfig:
    where = f"stages[{index}]"
    _check_keys(where, data, ("depth", "width", "mixer"), required=("depth", "width", "mixer"))
    mixer = data["mixer"]
    if isinstance(mixer, str):  # shorthand `mixer: pool`
        mixer = {"kind": mixer}
    _check_keys(f"{where}.mixer", mixer, ("kind",) + tuple(k for ks in MIXER_KEYS.values() for k in ks),
                required=("kind",))
    _check_choice(f"{where}.mixer.kind", mixer["kind"], MIXERS)
    for key in mixer:
        if key != "kind" and key not in MIXER_KEYS[mixer["kind"]]:
            raise _fail(f"{where}.mixer.{key}", mixer[key], f"does not apply to mixer kind {mixer['kind']!r}; "
                        f"its keys: {', '.join(MIXER_KEYS[mixer['kind']]) or 'none'}")
    return StageConfig(depth=data["depth"], width=data["width"], mixer=MixerConfig(**mixer))


def _validate(cfg: ArchConfig) -> None:
    """All the rules, in the order a reader would check them; the first broken one is reported."""
    if not isinstance(cfg.name, str) or not cfg.name:
        raise _fail("name", cfg.name, "allowed: a non-empty string")
    _check_int("image_size", cfg.image_size, 1, 4096)
    _check_int("in_chans", cfg.in_chans, 1, 64)
    _check_int("num_classes", cfg.num_classes, 1)
    _validate_stem(cfg)
    if not isinstance(cfg.stages, tuple) or not 1 <= len(cfg.stages) <= MAX_STAGES:
        raise _fail("stages", cfg.stages, f"allowed: 1 to {MAX_STAGES} stages")
    _check_choice("block", cfg.block, BLOCKS)
    _check_choice("norm", cfg.norm, NORMS)
    _check_float("norm_eps", cfg.norm_eps, 0.0, 1.0, open_low=True)
    _check_choice("act", cfg.act, ACTS)
    _check_float("mlp_ratio", cfg.mlp_ratio, 0.0, 16.0, open_low=True)
    if cfg.layer_scale is not None:
        _check_float("layer_scale", cfg.layer_scale, 0.0, 10.0, open_low=True)
    _check_float("drop_path", cfg.drop_path, 0.0, 0.9)
    _check_choice("head", cfg.head, HEADS)
    for name in ("final_norm", "pos_embed"):
        if not isinstance(getattr(cfg, name), bool):
            raise _fail(name, getattr(cfg, name), "allowed: true or false")
    grids = cfg.stage_grids()
    for i, stage in enumerate(cfg.stages):
        _validate_stage(cfg, i, stage, grids[i - 1] if i else grids[0])
    if cfg.head == "cls":
        _validate_cls(cfg)


def _validate_stem(cfg: ArchConfig) -> None:
    stem = cfg.stem
    _check_choice("stem.kind", stem.kind, STEMS)
    _check_int("stem.patch_size", stem.patch_size, 1, cfg.image_size)
    if cfg.image_size % stem.patch_size:
        divisors = [d for d in range(1, cfg.image_size + 1) if cfg.image_size % d == 0]
        raise _fail("stem.patch_size", stem.patch_size,
                    f"must divide image_size {cfg.image_size}; allowed: {', '.join(map(str, divisors))}")
    if stem.kind == "conv" and (stem.patch_size < 2 or stem.patch_size & (stem.patch_size - 1)):
        raise _fail("stem.patch_size", stem.patch_size,
                    "the conv stem stacks stride-2 convs, so it needs a power of two >= 2 (2, 4, 8, 16, ...)")
    if not isinstance(stem.act_norm, bool):
        raise _fail("stem.act_norm", stem.act_norm, "allowed: true or false")


def _validate_stage(cfg: ArchConfig, i: int, stage: StageConfig, grid_before: int) -> None:
    where = f"stages[{i}]"
    _check_int(f"{where}.depth", stage.depth, 1, 64)
    _check_int(f"{where}.width", stage.width, 1, 8192)
    if i > 0 and grid_before < 2:  # the previous grid is 1x1: downsampling has nothing left to halve
        raise _fail("stages", len(cfg.stages), f"the token grid is 1x1 before stage {i}; with stem.patch_size "
                    f"{cfg.stem.patch_size} on {cfg.image_size}x{cfg.image_size} images allow at most {i} stages")
    mixer = stage.mixer
    _check_choice(f"{where}.mixer.kind", mixer.kind, MIXERS)
    if mixer.kind == "attention":
        _validate_attention(f"{where}.mixer", mixer, stage.width)
    elif mixer.kind in SPATIAL_MIXERS:
        _check_int(f"{where}.mixer.kernel_size", mixer.kernel_size, 1, 31)
        if mixer.kernel_size % 2 == 0:
            raise _fail(f"{where}.mixer.kernel_size", mixer.kernel_size, "allowed: an odd size (1, 3, 5, 7, 9, ...)")
    elif mixer.kind == "mlp":
        _check_float(f"{where}.mixer.token_mlp_ratio", mixer.token_mlp_ratio, 0.0, 16.0, open_low=True)
        if int(mixer.token_mlp_ratio * stage.width) < 1:
            raise _fail(f"{where}.mixer.token_mlp_ratio", mixer.token_mlp_ratio,
                        f"token_mlp_ratio x width ({stage.width}) must be at least 1")


def _validate_attention(where: str, mixer: MixerConfig, width: int) -> None:
    if (mixer.heads is None) == (mixer.head_dim is None):
        raise _fail(f"{where}.heads", mixer.heads, "give exactly one of heads or head_dim for an attention mixer")
    if mixer.heads is not None:
        _check_int(f"{where}.heads", mixer.heads, 1)
        if width % mixer.heads:
            raise _fail(f"{where}.heads", mixer.heads, f"must divide the stage width {width}")
    else:
        _check_int(f"{where}.head_dim", mixer.head_dim, 1)
        if width % mixer.head_dim:
            raise _fail(f"{where}.head_dim", mixer.head_dim, f"must divide the stage width {width}")
    if not isinstance(mixer.qkv_bias, bool):
        raise _fail(f"{where}.qkv_bias", mixer.qkv_bias, "allowed: true or false")
    _check_float(f"{where}.temperature", mixer.temperature, 0.0, 100.0, open_low=True)


def _validate_cls(cfg: ArchConfig) -> None:
    """A CLS token rides along the token sequence, so every mixer must take a plain sequence: attention only
    (pool/conv need the 2-D grid, a token MLP needs a fixed grid of tokens, identity would never reach it)."""
    if len(cfg.stages) != 1:
        raise _fail("head", "cls", f"a CLS token needs an isotropic model (1 stage), got {len(cfg.stages)} stages; "
                    "use head: gap")
    if cfg.stages[0].mixer.kind != "attention":
        raise _fail("head", "cls", f"a CLS token needs the attention mixer (it keeps a token sequence), got "
                    f"stages[0].mixer.kind {cfg.stages[0].mixer.kind!r}; use head: gap")
