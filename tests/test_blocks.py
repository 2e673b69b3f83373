"""Every mixer, norm, stem, block style and layout on tiny inputs: shapes, gradients, train/eval behaviour; every
model can be rebuilt from its modules' attributes (what export relies on)."""
import inspect

import pytest
import torch

from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.model import build_model

MIXERS = [{"kind": "attention", "heads": 2, "temperature": 0.5}, {"kind": "attention", "head_dim": 4, "qkv_bias": False},
          {"kind": "pool", "kernel_size": 3}, {"kind": "mlp", "token_mlp_ratio": 0.5},
          {"kind": "conv", "kernel_size": 5}, {"kind": "identity"},
          {"kind": "window", "heads": 2, "window_size": 2}, {"kind": "sepconv", "kernel_size": 3, "expansion": 1.5},
          {"kind": "random"}, {"kind": "sr_attention", "heads": 2, "sr_ratio": 2},
          {"kind": "sr_attention", "head_dim": 4, "sr_ratio": 4, "reduction": "pool", "qkv_bias": False}]
NORMS = ["layernorm", "batchnorm", "groupnorm", "rmsnorm", "none", "layernorm_nobias", "groupnorm_nobias"]


def _cfg(**overrides) -> ArchConfig:
    data = {"image_size": 8, "in_chans": 1, "num_classes": 3, "stem": {"kind": "patch", "patch_size": 2},
            "stages": [{"depth": 2, "width": 8, "mixer": {"kind": "pool"}}]}
    data.update(overrides)
    return ArchConfig.from_dict(data)


def _check_trains(cfg: ArchConfig, batch: int = 2) -> None:
    torch.manual_seed(0)
    model = build_model(cfg).train()
    x = torch.randn(batch, cfg.in_chans, cfg.image_size, cfg.image_size)
    out = model(x)
    assert out.shape == (batch, cfg.num_classes)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f"no gradient for {missing}"
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))  # eval is deterministic (drop path off, BN running stats)


@pytest.mark.parametrize("mixer", MIXERS, ids=lambda m: f"{m['kind']}-{len(m)}")
@pytest.mark.parametrize("norm", NORMS)
def test_every_mixer_with_every_norm(mixer, norm):
    _check_trains(_cfg(norm=norm, stages=[{"depth": 2, "width": 8, "mixer": mixer}], layer_scale=1e-2))


@pytest.mark.parametrize("stem, patch", [("patch", 1), ("patch", 2), ("overlap", 2), ("overlap", 4), ("conv", 2),
                                         ("conv", 4)])
@pytest.mark.parametrize("act_norm", [False, True])
def test_every_stem(stem, patch, act_norm):
    _check_trains(_cfg(stem={"kind": stem, "patch_size": patch, "act_norm": act_norm}))


def test_overlap_stem_is_poolformers_7x7_stride_4():
    model = build_model(_cfg(image_size=16, stem={"kind": "overlap", "patch_size": 4}))
    conv = model.stem.proj
    assert (conv.kernel_size, conv.stride, conv.padding) == ((7, 7), (4, 4), (2, 2))


def test_conv_stem_strides_multiply_to_the_patch():
    model = build_model(_cfg(image_size=16, stem={"kind": "conv", "patch_size": 8}))
    convs = [m for m in model.stem.proj if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1] and convs[-1].kernel_size == (1, 1)
    assert model.stem(torch.zeros(1, 1, 16, 16)).shape == (1, 2, 2, 8)


@pytest.mark.parametrize("act", ["gelu", "relu", "silu", "starrelu", "squared_relu"])
def test_activations_and_convmixer_block(act):
    _check_trains(_cfg(act=act, block="convmixer", norm="batchnorm", final_norm=False,
                       stem={"kind": "patch", "patch_size": 2, "act_norm": True},
                       stages=[{"depth": 2, "width": 8, "mixer": {"kind": "conv", "kernel_size": 3}}]))


def test_hierarchical_hybrid_four_stages_with_drop_path():
    mixers = ["pool", "pool", "attention", "attention"]
    stages = [{"depth": 1, "width": 8 * (i + 1), "mixer": {"kind": m, "heads": 2} if m == "attention" else m}
              for i, m in enumerate(mixers)]
    cfg = _cfg(image_size=16, stem={"kind": "overlap", "patch_size": 2}, stages=stages, norm="groupnorm",
               layer_scale=1e-5, drop_path=0.2)
    assert cfg.stage_grids() == [8, 4, 2, 1]
    _check_trains(cfg)
    model = build_model(cfg)
    shapes = []
    x = model.stem(torch.zeros(1, 1, 16, 16))
    for stage in model.stages:
        x = stage(x)
        shapes.append(tuple(x.shape))
    assert shapes == [(1, 8, 8, 8), (1, 4, 4, 16), (1, 2, 2, 24), (1, 1, 1, 32)]


def test_odd_grid_downsamples_to_ceil_half():
    cfg = _cfg(image_size=12, stem={"kind": "patch", "patch_size": 2},
               stages=[{"depth": 1, "width": 8, "mixer": "conv"}, {"depth": 1, "width": 8, "mixer": "mlp"}])
    assert cfg.stage_grids() == [6, 3]
    _check_trains(cfg)


def test_cls_token_with_position_embedding():
    cfg = _cfg(head="cls", pos_embed=True, stages=[{"depth": 1, "width": 8, "mixer": {"kind": "attention", "heads": 2}}])
    _check_trains(cfg)
    model = build_model(cfg)
    assert model.stem.pos_embed.shape == (1, 17, 8) and model.stem(torch.zeros(2, 1, 8, 8)).shape == (2, 17, 8)


def test_drop_path_only_in_training():
    cfg = _cfg(drop_path=0.9, stages=[{"depth": 4, "width": 8, "mixer": "conv"}])
    model = build_model(cfg)
    x = torch.randn(8, 1, 8, 8)
    torch.manual_seed(0)
    a = model.train()(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_batchnorm_updates_running_stats_only_in_training():
    model = build_model(_cfg(norm="batchnorm"))
    norm = model.stages[0].blocks[0].norm1
    before = norm.running_mean.clone()
    model.eval()(torch.randn(4, 1, 8, 8))
    assert torch.equal(norm.running_mean, before)
    model.train()(torch.randn(4, 1, 8, 8))
    assert not torch.equal(norm.running_mean, before)


def test_temperature_changes_attention():
    base = {"depth": 1, "width": 8, "mixer": {"kind": "attention", "heads": 2}}
    hot = {**base, "mixer": {"kind": "attention", "heads": 2, "temperature": 4.0}}
    x = torch.randn(2, 1, 8, 8)
    torch.manual_seed(0)
    a = build_model(_cfg(stages=[base])).eval()(x)
    torch.manual_seed(0)
    b = build_model(_cfg(stages=[hot])).eval()(x)
    assert not torch.allclose(a, b)


# ---- liftability: export rebuilds a built model from its modules' attributes (the convention in model.py)
LIFTABLE_GLOBALS = {"torch", "nn", "F", "math"}
LIFT_CONFIGS = [
    _cfg(stages=[{"depth": 2, "width": 8, "mixer": m}], norm=n, layer_scale=ls, drop_path=0.1)
    for m, n, ls in zip(MIXERS, NORMS * 2, [1e-2, None, 1e-5, None, 1e-2, None] * 2)
] + [
    _cfg(image_size=16, stem={"kind": "conv", "patch_size": 4, "act_norm": True}, act="silu", norm="batchnorm",
         stages=[{"depth": 1, "width": 8, "mixer": "pool"}, {"depth": 2, "width": 16, "mixer": "mlp"}]),
    _cfg(stem={"kind": "overlap", "patch_size": 2, "act_norm": True}, block="convmixer", norm="batchnorm", act="relu",
         final_norm=False, stages=[{"depth": 2, "width": 8, "mixer": {"kind": "conv", "kernel_size": 3}}]),
    _cfg(head="cls", pos_embed=True, stages=[{"depth": 2, "width": 8, "mixer": {"kind": "attention", "heads": 2}}]),
    # Swin's parts: shifted windows, patch merging, a normalised stem
    _cfg(image_size=16, stem={"kind": "patch", "patch_size": 2, "norm": True}, downsample="patch_merging",
         stages=[{"depth": 2, "width": 8, "mixer": {"kind": "window", "heads": 2, "window_size": 4}},
                 {"depth": 2, "width": 16, "mixer": {"kind": "window", "head_dim": 4, "window_size": 2}}]),
    # ConvNeXt's block, norm-first 2x2 downsampling, pool-then-norm head
    _cfg(image_size=16, stem={"kind": "patch", "patch_size": 2, "norm": True}, block="convnext",
         downsample="norm_patch", head="pooled", layer_scale=1e-6, norm_eps=1e-6,
         stages=[{"depth": 2, "width": 8, "mixer": {"kind": "conv", "kernel_size": 7}},
                 {"depth": 1, "width": 16, "mixer": {"kind": "conv", "kernel_size": 3}}]),
    # the MetaFormer baselines: SepConv, StarReLU, biasless norms and MLPs, residual scales, MLP head
    _cfg(image_size=16, stem={"kind": "overlap", "patch_size": 2, "norm": True}, downsample="norm_conv",
         norm="groupnorm_nobias", downsample_norm="layernorm_nobias", head_norm="layernorm", act="starrelu",
         mlp_bias=False, head="pooled", head_mlp_ratio=2.0,
         stages=[{"depth": 1, "width": 8, "mixer": {"kind": "sepconv", "kernel_size": 3}},
                 {"depth": 2, "width": 16, "mixer": {"kind": "attention", "head_dim": 8, "qkv_bias": False,
                                                     "proj_bias": False}, "res_scale": 1.0, "pos_embed": True},
                 {"depth": 1, "width": 16, "mixer": "random"}]),
]


def _is_plain(value) -> bool:
    return isinstance(value, (int, float, bool, str, type(None))) or (
        isinstance(value, tuple) and all(_is_plain(v) for v in value))


def _rebuild(module: torch.nn.Module) -> torch.nn.Module:
    """The constructor call of `module` read back from its attributes, as export writes it."""
    cls = type(module)
    if cls is torch.nn.Identity:
        return cls()
    if cls in (torch.nn.Sequential, torch.nn.ModuleList):
        return cls([_rebuild(m) for m in module]) if cls is torch.nn.ModuleList else cls(*map(_rebuild, module))
    assert cls.__module__.startswith("vitnas.search_spaces."), f"{cls} is not liftable"
    args = {}
    for name in inspect.signature(cls).parameters:
        value = getattr(module, name)
        ok = _is_plain(value) or isinstance(value, torch.nn.Module) or (
            isinstance(value, type) and issubclass(value, torch.nn.Module))
        assert ok, f"{cls.__name__}({name}={value!r}): not a plain value, module or module class"
        args[name] = _rebuild(value) if isinstance(value, torch.nn.Module) else value
    return cls(**args)


def _own_classes(model: torch.nn.Module) -> set[type]:
    """Our classes in a model: its modules' and the module classes it was given (norm_layer=GroupNorm1, ...)."""
    classes = {type(m) for m in model.modules()} | {v for m in model.modules() for v in vars(m).values()
                                                      if isinstance(v, type)}
    return {c for c in classes if c.__module__.startswith("vitnas.search_spaces.")}


@pytest.mark.parametrize("cfg", LIFT_CONFIGS, ids=lambda c: "-".join(s.mixer.kind for s in c.stages) + f"-{c.norm}")
def test_every_model_is_rebuilt_from_its_attributes_with_equal_outputs(cfg):
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    rebuilt = _rebuild(model).eval()
    rebuilt.load_state_dict(model.state_dict())  # strict: the same parameter and buffer names
    x = torch.randn(2, cfg.in_chans, cfg.image_size, cfg.image_size)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))


def test_every_class_stores_its_arguments_and_names_only_torch_and_liftable_classes():
    models = [build_model(c) for c in LIFT_CONFIGS]
    classes = set().union(*map(_own_classes, models))
    names = {c.__name__ for c in classes}
    assert {"MetaFormer", "Stem", "ConvStem", "Stage", "Downsample", "MetaFormerBlock", "Head", "Attention", "Pooling",
            "DepthwiseConv", "TokenMLP", "Mlp", "LayerScale", "DropPath", "GroupNorm1", "ChannelBatchNorm",
            "WindowAttention", "PatchMerging", "ConvNeXtBlock", "MlpClassifier", "SepConv", "StarReLU",
            "SquaredReLU", "RandomMixing", "LayerNormNoBias", "GroupNorm1NoBias", "PositionEmbedding",
            "SpatialReductionAttention"} <= names
    for module in (m for model in models for m in model.modules() if type(m) in classes):
        missing = [p for p in inspect.signature(type(module)).parameters if not hasattr(module, p)]
        assert not missing, f"{type(module).__name__} does not keep {missing}"
    for cls in classes:
        for function in vars(cls).values():
            function = getattr(function, "__func__", function)  # staticmethods
            if inspect.isfunction(function):
                used = set(inspect.getclosurevars(function).globals)
                assert used <= LIFTABLE_GLOBALS | names, f"{cls.__name__}.{function.__name__} uses {used - names}"
