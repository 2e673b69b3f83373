"""The typed architecture config: frozen dataclasses, validated once when made, YAML/JSON friendly.

A config is plain data: `ArchConfig.from_dict(yaml.safe_load(...))` reads one, `.to_dict()` writes one back.
Every validation failure is a `UserError` with one line naming the field, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

import vitnas.search_spaces.parts  # noqa: F401  (registers the built-in mixers, norms and activations)
from vitnas.errors import UserError
from vitnas.search_spaces.checks import (check_bool, check_choice, check_float, check_int, check_keys, check_mapping,
                                         fail)
from vitnas.search_spaces.registry import ACTS, MIXERS, NORMS

STEMS = ("patch", "overlap", "conv")
BLOCKS = ("metaformer", "convmixer", "convnext")
HEADS = ("gap", "cls", "pooled")
DOWNSAMPLES = ("conv", "norm_conv", "norm_patch", "patch_merging", "conv_norm")
PAIRING_DOWNSAMPLES = ("norm_patch", "patch_merging")  # take 2x2 neighbours: the grid they halve must be even
MLPS = ("plain", "dwconv")  # the blocks' channel MLP: layers.Mlp, layers.DwConvMlp
MAX_STAGES = 4


def stage_grids(stem_grid: int, num_stages: int) -> list[int]:
    """Side of the token grid in each stage: blocks.Downsample's 3x3 stride-2 padding-1 conv gives ceil(g / 2), the
    2x2 downsamplings g / 2 of the even grids they are allowed on."""
    grids = [stem_grid]
    for _ in range(num_stages - 1):
        grids.append((grids[-1] + 1) // 2)
    return grids


@dataclass(frozen=True)
class StemConfig:
    """How pixels become tokens: `patch` (p x p conv, stride p), `overlap` ((2p-1)x(2p-1) conv, stride p, padding
    p//2: PoolFormer's 7x7/4 for p=4), `conv` (log2(p) 3x3 stride-2 convs with BN+ReLU then a 1x1 conv, Xiao et al.
    2021). `act_norm` adds the activation then the norm after the stem (ConvMixer); `norm` adds the norm alone
    (Swin, ConvNeXt, the MetaFormer baselines). The stem's norm is `downsample_norm` (default: the model's norm).
    `centered` (overlap only) pads p-1 instead, centring each kernel on its stride point: PVT v2's 7x7/4 with
    padding 3 (the grid is H / p either way, the pixels each token sees differ)."""
    kind: str = "patch"
    patch_size: int = 16
    act_norm: bool = False
    norm: bool = False
    centered: bool = False


@dataclass(frozen=True)
class MixerConfig:
    """The token mixer of a stage: a registered `kind` (registry.MIXERS) and its settings.

    `settings` may be given as a mapping; it is kept as (key, value) pairs in the kind's declared order with the
    kind's defaults filled in, so equal mixers compare equal. Keys foreign to the kind are kept for the config's
    validation to report. The built-in kinds (parts/): attention (`heads` or `head_dim`, `qkv_bias`,
    `temperature`, `proj_bias`), window (`heads` or `head_dim`, `qkv_bias`, `window_size`, `shift`), pool and conv
    (`kernel_size`), sepconv (`kernel_size`, `expansion`), mlp (`token_mlp_ratio`), random, identity.
    """
    kind: str = "pool"
    settings: tuple[tuple[str, Any], ...] | Mapping[str, Any] = ()

    def __post_init__(self) -> None:
        given = dict(self.settings)
        declared = MIXERS[self.kind].settings if self.kind in MIXERS else {}
        object.__setattr__(self, "settings", tuple({**declared, **given}.items()))

    def __getitem__(self, key: str) -> Any:
        return dict(self.settings)[key]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **{k: v for k, v in self.settings if v is not None}}


@dataclass(frozen=True)
class StageConfig:
    """`depth` blocks of `width` channels with one token mixer; stages after the first start with a downsampling
    that halves the grid (ArchConfig.downsample). `res_scale` (MetaFormer baselines: null, null, 1, 1) scales the
    metaformer block's residuals by a learned per-channel vector started there; `pos_embed` adds a learned position
    embedding after the stage's downsampling (PoolFormer's hybrid adds one in stage 3; the first stage's is the
    model's `pos_embed`). `mlp_ratio` overrides the model's for this stage's channel MLPs (PVT v2: 8, 8, 4, 4)."""
    depth: int = 1
    width: int = 64
    mixer: MixerConfig = field(default_factory=MixerConfig)
    res_scale: float | None = None
    pos_embed: bool = False
    mlp_ratio: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """depth, width and mixer; the extras only when set, so a plain stage stays one short line."""
        extras = {"res_scale": self.res_scale, "pos_embed": self.pos_embed, "mlp_ratio": self.mlp_ratio}
        return {"depth": self.depth, "width": self.width, "mixer": self.mixer.to_dict(),
                **{k: v for k, v in extras.items() if v not in (None, False)}}


@dataclass(frozen=True)
class ArchConfig:
    """One model. `block` picks the block wiring (see blocks.MetaFormerBlock): `metaformer` is pre-norm
    x + mixer(norm(x)), x + mlp(norm(x)) with optional layer scale; `convmixer` is x + norm(act(mixer(x))) then
    norm(act(pointwise(x))) without residual (mlp_ratio and layer_scale unused); `convnext` is one residual
    x + ls(mlp(norm(mixer(x)))) (blocks.ConvNeXtBlock). `mlp_bias` false drops the channel MLP's biases; `mlp`
    picks the channel MLP: `plain` (linear, activation, linear) or `dwconv` (PVT v2: a depthwise 3x3 conv on the
    hidden channels before the activation; it needs the token grid, so no CLS token).

    `downsample` is the transition between stages: `conv` (3x3 stride-2 conv, PoolFormer), `norm_conv` (norm, then
    that conv: MetaFormer baselines), `norm_patch` (norm, then a 2x2 stride-2 conv: ConvNeXt), `patch_merging`
    (Swin: 2x2 neighbours concatenated, norm, linear), `conv_norm` (that 3x3 conv, then the norm: PVT v2); the 2x2
    ones need even grids. `downsample_norm` is the norm of the stem and of the downsampling (null: `norm`),
    `downsample_norm_eps` its eps (null: `norm_eps`; PVT v2 mixes 1e-5 there with 1e-6 in the blocks).
    `stage_norm` ends every stage with a norm (PVT v2; the last stage's then replaces the head's `final_norm`).

    `head`: `gap` normalises the tokens, then averages them; `cls` normalises and takes the CLS token; `pooled`
    averages first, then normalises (ConvNeXt, MetaFormer baselines). `head_norm` is the head's norm (null:
    `norm`); `head_mlp_ratio` replaces the linear classifier by the MetaFormer baselines' MLP head: linear to
    ratio x width, squared ReLU, head norm, linear."""
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
    downsample: str = "conv"
    downsample_norm: str | None = None
    mlp_bias: bool = True
    head_norm: str | None = None
    head_mlp_ratio: float | None = None
    mlp: str = "plain"
    downsample_norm_eps: float | None = None
    stage_norm: bool = False

    def __post_init__(self) -> None:
        _validate(self)

    # ---- derived facts the builder and the cost model share
    @property
    def stem_grid(self) -> int:
        """Side of the token grid after the stem."""
        return self.image_size // self.stem.patch_size

    def stage_grids(self) -> list[int]:
        """Side of the token grid in each stage."""
        return stage_grids(self.stem_grid, len(self.stages))

    # ---- conversions
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchConfig:
        top = tuple(f.name for f in dataclasses.fields(cls))
        check_keys("", data, top, required=("stages",))
        stem_data = data.get("stem", {})
        check_keys("stem", stem_data, tuple(f.name for f in dataclasses.fields(StemConfig)))
        stages_data = data["stages"]
        if not isinstance(stages_data, (list, tuple)) or not stages_data:
            raise fail("stages", stages_data, f"allowed: a list of 1 to {MAX_STAGES} stages")
        stages = tuple(_stage_from_dict(i, s) for i, s in enumerate(stages_data))
        rest = {k: v for k, v in data.items() if k not in ("stem", "stages")}
        return cls(stem=StemConfig(**stem_data), stages=stages, **rest)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["stem"] = dataclasses.asdict(self.stem)
        out["stages"] = [s.to_dict() for s in self.stages]
        return out

    @classmethod
    def from_yaml(cls, path: str | Path) -> ArchConfig:
        return cls.from_dict(read_yaml(Path(path), "config file"))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_data(self, *, image_size: int | None = None, in_chans: int | None = None,
                  num_classes: int | None = None) -> ArchConfig:
        """The same architecture for another data set (validated again: the patch must still divide the image)."""
        changes = {"image_size": image_size, "in_chans": in_chans, "num_classes": num_classes}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


MAX_YAML_NODES = 100_000  # a config has a few hundred values, a space or a study a few thousand


class _BoundedLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, with a bound on the document's size once its aliases (`*name`) are expanded: nested
    aliases let a few hundred bytes stand for gigabytes of data as soon as anything walks or prints it. Anchors
    that repeat a stage or two (what yaml.safe_dump writes for a repeated object) stay allowed."""

    def compose_document(self):
        root = super().compose_document()
        if _expanded_size(root, {}) > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(None, None, f"its aliases (*name) expand to more than "
                                              f"{MAX_YAML_NODES:,} values; write the values out", root.start_mark)
        return root


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values `node` stands for with every alias expanded; each distinct node is counted once (`sizes`)."""
    if id(node) not in sizes:
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


def read_yaml(path: Path, what: str, hint: str = "") -> Any:
    """A YAML file (config, space, study) as plain data through yaml.safe_load's loader, its aliases bounded; a file
    that cannot be read or parsed is one UserError line naming it and, for a syntax error, the line and column (then
    `hint`, if any)."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader)
    except OSError as err:
        raise UserError(f"{what} {str(path)!r}: cannot read it ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise UserError(f"{what} {str(path)!r}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset "
                        f"{err.start}); save it as UTF-8") from None
    except RecursionError:
        raise UserError(f"{what} {str(path)!r}: nested too deeply to read; no config needs more than a few "
                        "levels") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{what} {str(path)!r}: not valid YAML ({where}{problem}{hint})") from None


def _stage_from_dict(index: int, data: Any) -> StageConfig:
    where = f"stages[{index}]"
    check_keys(where, data, ("depth", "width", "mixer", "res_scale", "pos_embed", "mlp_ratio"),
               required=("depth", "width", "mixer"))
    mixer = data["mixer"]
    if isinstance(mixer, str):  # shorthand `mixer: pool`
        mixer = {"kind": mixer}
    check_mapping(f"{where}.mixer", mixer)
    if "kind" not in mixer:
        raise UserError(f"{where}.mixer.kind: missing; it is required")
    settings = {k: v for k, v in mixer.items() if k != "kind"}
    return StageConfig(depth=data["depth"], width=data["width"], mixer=MixerConfig(mixer["kind"], settings),
                       res_scale=data.get("res_scale"), pos_embed=data.get("pos_embed", False),
                       mlp_ratio=data.get("mlp_ratio"))


def _validate(cfg: ArchConfig) -> None:
    """All the rules, in the order a reader would check them; the first broken one is reported."""
    if not isinstance(cfg.name, str) or not cfg.name:
        raise fail("name", cfg.name, "allowed: a non-empty string")
    check_int("image_size", cfg.image_size, 1, 4096)
    check_int("in_chans", cfg.in_chans, 1, 64)
    check_int("num_classes", cfg.num_classes, 1)
    _validate_stem(cfg)
    if not isinstance(cfg.stages, tuple) or not 1 <= len(cfg.stages) <= MAX_STAGES:
        count = len(cfg.stages) if isinstance(cfg.stages, tuple) else cfg.stages  # the count, not every stage
        raise fail("stages", count, f"allowed: 1 to {MAX_STAGES} stages")
    check_choice("block", cfg.block, BLOCKS)
    NORMS.require("norm", cfg.norm)
    check_float("norm_eps", cfg.norm_eps, 0.0, 1.0, open_low=True)
    ACTS.require("act", cfg.act)
    check_float("mlp_ratio", cfg.mlp_ratio, 0.0, 16.0, open_low=True)
    if cfg.layer_scale is not None:
        check_float("layer_scale", cfg.layer_scale, 0.0, 10.0, open_low=True)
    check_float("drop_path", cfg.drop_path, 0.0, 0.9)
    check_choice("head", cfg.head, HEADS)
    check_bool("final_norm", cfg.final_norm)
    check_bool("pos_embed", cfg.pos_embed)
    check_choice("downsample", cfg.downsample, DOWNSAMPLES)
    for key in ("downsample_norm", "head_norm"):
        if getattr(cfg, key) is not None:
            NORMS.require(key, getattr(cfg, key))
    check_bool("mlp_bias", cfg.mlp_bias)
    if cfg.head_mlp_ratio is not None:
        check_float("head_mlp_ratio", cfg.head_mlp_ratio, 0.0, 16.0, open_low=True)
    _validate_mlp(cfg)
    if cfg.downsample_norm_eps is not None:
        check_float("downsample_norm_eps", cfg.downsample_norm_eps, 0.0, 1.0, open_low=True)
    check_bool("stage_norm", cfg.stage_norm)
    grids = cfg.stage_grids()
    for i, stage in enumerate(cfg.stages):
        _validate_stage(cfg, i, stage, grids)
    if cfg.head == "cls":
        _validate_cls(cfg)


def _validate_stem(cfg: ArchConfig) -> None:
    stem = cfg.stem
    check_choice("stem.kind", stem.kind, STEMS)
    check_int("stem.patch_size", stem.patch_size, 1, cfg.image_size)
    if cfg.image_size % stem.patch_size:
        divisors = [d for d in range(1, cfg.image_size + 1) if cfg.image_size % d == 0]
        raise fail("stem.patch_size", stem.patch_size,
                   f"must divide image_size {cfg.image_size}; allowed: {', '.join(map(str, divisors))}")
    if stem.kind == "conv" and (stem.patch_size < 2 or stem.patch_size & (stem.patch_size - 1)):
        raise fail("stem.patch_size", stem.patch_size,
                   "the conv stem stacks stride-2 convs, so it needs a power of two >= 2 (2, 4, 8, 16, ...)")
    check_bool("stem.act_norm", stem.act_norm)
    check_bool("stem.norm", stem.norm)
    if stem.norm and stem.act_norm:
        raise fail("stem.norm", stem.norm, "act_norm already ends the stem with the norm; set one of them")
    check_bool("stem.centered", stem.centered)
    if stem.centered and stem.kind != "overlap":
        raise fail("stem.centered", True, f"only the overlap stem's kernels overlap, got stem.kind {stem.kind!r}; "
                   "use stem.kind: overlap or centered: false")


def _validate_mlp(cfg: ArchConfig) -> None:
    check_choice("mlp", cfg.mlp, MLPS)
    if cfg.mlp == "dwconv" and cfg.block == "convmixer":
        raise fail("mlp", "dwconv", "the convmixer block has no channel MLP (a pointwise conv instead); use mlp: plain")
    if cfg.mlp == "dwconv" and cfg.head == "cls":
        raise fail("mlp", "dwconv", "its depthwise conv needs the token grid, which a CLS token leaves; use head: "
                   "gap or mlp: plain")


def _validate_stage(cfg: ArchConfig, i: int, stage: StageConfig, grids: list[int]) -> None:
    where = f"stages[{i}]"
    check_int(f"{where}.depth", stage.depth, 1, 64)
    check_int(f"{where}.width", stage.width, 1, 8192)
    if i > 0 and grids[i - 1] < 2:  # the previous grid is 1x1: downsampling has nothing left to halve
        raise fail("stages", len(cfg.stages), f"the token grid is 1x1 before stage {i}; with stem.patch_size "
                   f"{cfg.stem.patch_size} on {cfg.image_size}x{cfg.image_size} images allow at most {i} stages")
    if i > 0 and cfg.downsample in PAIRING_DOWNSAMPLES and grids[i - 1] % 2:
        raise fail("downsample", cfg.downsample, f"takes 2x2 neighbours, so the token grid before stage {i} must "
                   f"be even, got {grids[i - 1]}x{grids[i - 1]}; use downsample: conv or norm_conv, or another "
                   "stem.patch_size")
    if stage.res_scale is not None:
        check_float(f"{where}.res_scale", stage.res_scale, 0.0, 10.0, open_low=True)
        if cfg.block != "metaformer":
            raise fail(f"{where}.res_scale", stage.res_scale, f"only the metaformer block scales its residuals, "
                       f"got block {cfg.block!r}; use res_scale: null")
    check_bool(f"{where}.pos_embed", stage.pos_embed)
    if stage.mlp_ratio is not None:
        check_float(f"{where}.mlp_ratio", stage.mlp_ratio, 0.0, 16.0, open_low=True)
    if i == 0 and stage.pos_embed:
        raise fail(f"{where}.pos_embed", True, "the first stage's position embedding is the model's pos_embed; "
                   "set pos_embed: true at the top level instead")
    mixer = stage.mixer
    kind = MIXERS.require(f"{where}.mixer.kind", mixer.kind)
    for key, value in mixer.settings:
        if key not in kind.settings:
            raise fail(f"{where}.mixer.{key}", value, f"does not apply to mixer kind {mixer.kind!r}; "
                       f"its keys: {', '.join(kind.settings) or 'none'}")
    kind.validate(dict(mixer.settings), stage.width, grids[i], f"{where}.mixer")


def _validate_cls(cfg: ArchConfig) -> None:
    """A CLS token rides along the token sequence, so every mixer must take a plain sequence (attention; pool and
    conv need the 2-D grid, a token MLP a fixed grid of tokens, and identity would never reach it)."""
    if len(cfg.stages) != 1:
        raise fail("head", "cls", f"a CLS token needs an isotropic model (1 stage), got {len(cfg.stages)} stages; "
                   "use head: gap")
    kind = cfg.stages[0].mixer.kind
    if not MIXERS[kind].cls_token:
        takers = ", ".join(name for name, k in MIXERS.items() if k.cls_token)
        raise fail("head", "cls", f"a CLS token needs a mixer that keeps a token sequence ({takers}), got "
                   f"stages[0].mixer.kind {kind!r}; use head: gap")
