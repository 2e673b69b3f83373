"""PVT v2's parts: the depthwise-conv channel MLP, the centred overlapping stem, conv-then-norm downsampling, stage
norms, per-stage MLP ratios; their validation; and the pvt_v2_b1 preset's exact size."""
import pytest
import torch
import torch.nn.functional as F
from test_blocks import _rebuild
from test_export import assert_equal_models

from vitnas.errors import UserError
from vitnas.nas.cost import count_cost
from vitnas.search_spaces.blocks import Downsample
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.layers import DwConvMlp, Mlp
from vitnas.search_spaces.model import build_model
from vitnas.search_spaces.presets import load_preset
from vitnas.search_spaces.stems import Stem

TINY = {"image_size": 8, "in_chans": 1, "num_classes": 3, "stem": {"kind": "patch", "patch_size": 2},
        "stages": [{"depth": 1, "width": 8, "mixer": "pool"}, {"depth": 1, "width": 16, "mixer": "pool"}]}


def _pvt_like(**changes) -> ArchConfig:
    """Every PVT v2 option on an 8x8 single-channel image: 4x4 then 2x2 tokens."""
    data = {"image_size": 8, "in_chans": 1, "num_classes": 3,
            "stem": {"kind": "overlap", "patch_size": 2, "norm": True, "centered": True},
            "stages": [{"depth": 2, "width": 8, "mlp_ratio": 3.0,
                        "mixer": {"kind": "sr_attention", "heads": 2, "sr_ratio": 2}},
                       {"depth": 1, "width": 16, "mixer": {"kind": "sr_attention", "head_dim": 8}}],
            "mlp": "dwconv", "downsample": "conv_norm", "downsample_norm_eps": 1e-5, "norm_eps": 1e-6,
            "stage_norm": True, "final_norm": False, **changes}
    return ArchConfig.from_dict(data)


def _randomized(module: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for tensor in module.state_dict().values():
            tensor.add_(0.1 * torch.randn(tensor.shape, generator=torch.Generator().manual_seed(3)))
    return module.eval()


def test_dwconv_mlp_is_linear_depthwise_3x3_gelu_linear():
    torch.manual_seed(0)
    mlp = _randomized(DwConvMlp(4, 6, torch.nn.GELU))
    x = torch.randn(2, 3, 5, 4)  # (N, H, W, C)
    # the same function in NCHW: 1x1 convs for the linear layers, a grouped 3x3 conv zero-padded by one
    images = x.permute(0, 3, 1, 2)
    hidden = F.conv2d(images, mlp.fc1.weight[:, :, None, None], mlp.fc1.bias)
    hidden = F.gelu(F.conv2d(hidden, mlp.dwconv.weight, mlp.dwconv.bias, padding=1, groups=6))
    expected = F.conv2d(hidden, mlp.fc2.weight[:, :, None, None], mlp.fc2.bias).permute(0, 2, 3, 1)
    with torch.no_grad():
        assert torch.allclose(mlp(x), expected, atol=1e-5)


def test_dwconv_mlp_mixes_exactly_the_3x3_neighbourhood_and_drops_every_bias():
    mlp = DwConvMlp(2, 4, torch.nn.GELU, bias=False)
    assert [name for name, _ in mlp.named_parameters()] == ["fc1.weight", "fc2.weight", "dwconv.weight"]
    x = torch.zeros(1, 5, 5, 2)
    x[0, 2, 2] = 1.0
    with torch.no_grad():
        touched = mlp(x).abs().sum(-1) > 0
    expected = torch.zeros(5, 5, dtype=torch.bool)
    expected[1:4, 1:4] = True
    assert torch.equal(touched[0], expected)


def test_centered_overlap_stem_pads_p_minus_1():
    """p = 4: a 7x7 kernel at stride 4 padded by 3 (PVT v2), not by 2 (PoolFormer); same 2x2 grid on 8x8."""
    torch.manual_seed(0)
    stem = _randomized(Stem("overlap", 1, 3, 4, 8, False, torch.nn.GELU, torch.nn.LayerNorm, 1e-5, False, False,
                            centered=True))
    x = torch.randn(2, 1, 8, 8)
    expected = F.conv2d(x, stem.proj.weight, stem.proj.bias, stride=4, padding=3).permute(0, 2, 3, 1)
    with torch.no_grad():
        assert torch.allclose(stem(x), expected, atol=1e-6)
    # token (0, 0) is centred on pixel (0, 0): it sees pixels 0..3 of each side, so pixel 4 leaves it unchanged
    moved = x.clone()
    moved[:, :, 4, 4] += 1.0
    with torch.no_grad():
        assert torch.equal(stem(moved)[:, 0, 0], stem(x)[:, 0, 0])


def test_conv_norm_downsample_normalises_the_conv_output():
    torch.manual_seed(0)
    down = _randomized(Downsample(4, 6, 3, torch.nn.LayerNorm, 1e-5, norm_after=True))
    x = torch.randn(2, 5, 5, 4)
    conv = F.conv2d(x.permute(0, 3, 1, 2), down.conv.weight, down.conv.bias, stride=2, padding=1)
    expected = F.layer_norm(conv.permute(0, 2, 3, 1), (6,), down.norm.weight, down.norm.bias, 1e-5)
    with torch.no_grad():
        out = down(x)
    assert out.shape == (2, 3, 3, 6)
    assert torch.allclose(out, expected, atol=1e-5)


def test_pvt_options_build_what_they_say():
    model = build_model(_pvt_like())
    first, second = model.stages
    assert first.blocks[0].channel.fc1.out_features == 24 and second.blocks[0].channel.fc1.out_features == 64
    assert all(isinstance(block.channel, DwConvMlp) for stage in model.stages for block in stage.blocks)
    assert (model.stem.post.eps, second.downsample.norm.eps, first.norm.eps, first.blocks[0].norm1.eps) == (
        1e-5, 1e-5, 1e-6, 1e-6)
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        tokens = first(model.stem(x))
    # a fresh LayerNorm ends the stage: every token has mean 0 and variance 1 over its channels
    assert torch.allclose(tokens.mean(-1), torch.zeros(2, 4, 4), atol=1e-5)
    assert torch.allclose(tokens.var(-1, unbiased=False), torch.ones(2, 4, 4), atol=1e-3)
    plain = build_model(ArchConfig.from_dict(TINY))
    assert type(plain.stages[0].blocks[0].channel) is Mlp and plain.stages[0].norm is None


def test_pvt_model_is_liftable_and_exports_equal():
    cfg = _pvt_like()
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    rebuilt = _rebuild(model).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    assert_equal_models(cfg)
    assert_equal_models(_pvt_like(block="convnext", stages=[{"depth": 1, "width": 8, "mixer": "conv"}]))


def test_pvt_fields_round_trip_and_default_off():
    cfg = _pvt_like()
    assert ArchConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["stages"][0]["mlp_ratio"] == 3.0 and "mlp_ratio" not in cfg.to_dict()["stages"][1]
    plain = ArchConfig.from_dict(TINY)
    assert (plain.mlp, plain.downsample_norm_eps, plain.stage_norm, plain.stem.centered) == (
        "plain", None, False, False)


@pytest.mark.parametrize("changes, message", [
    ({"mlp": "conv"}, "mlp: got 'conv'; allowed: plain, dwconv"),
    ({"mlp": ["dwconv"]}, "mlp: got ['dwconv']; allowed: plain, dwconv"),
    ({"mlp": "dwconv", "block": "convmixer"}, "mlp: got 'dwconv'; the convmixer block has no channel MLP"),
    ({"mlp": "dwconv", "head": "cls", "stages": [{"depth": 1, "width": 8, "mixer": "attention"}]},
     "mlp: got 'dwconv'; its depthwise conv needs the token grid, which a CLS token leaves"),
    ({"stem": {"kind": "patch", "patch_size": 2, "centered": True}},
     "stem.centered: got True; only the overlap stem's kernels overlap, got stem.kind 'patch'"),
    ({"stem": {"kind": "overlap", "patch_size": 2, "centered": 1}}, "stem.centered: got 1; allowed: true or false"),
    ({"stages": [{"depth": 1, "width": 8, "mixer": "pool", "mlp_ratio": 0}]},
     "stages[0].mlp_ratio: got 0; allowed: a number > 0.0 and <= 16.0"),
    ({"downsample_norm_eps": 0}, "downsample_norm_eps: got 0; allowed: a number > 0.0 and <= 1.0"),
    ({"stage_norm": "yes"}, "stage_norm: got 'yes'; allowed: true or false"),
    ({"downsample": "norm_after"}, "downsample: got 'norm_after'; allowed: conv, norm_conv, norm_patch, "
                                   "patch_merging, conv_norm"),
])
def test_validation_errors_are_one_line(changes, message):
    with pytest.raises(UserError) as err:
        ArchConfig.from_dict({**TINY, **changes})
    assert message in str(err.value) and "\n" not in str(err.value)


def _pvt_v2_params(widths, depths, mlp_ratios, sr_ratios, classes=1000) -> int:
    """PVT v2's parameter count from its published structure (Wang et al. 2022), layer by layer."""
    total = 3 * widths[0] * 7 * 7 + widths[0] + 2 * widths[0]  # overlapping 7x7 patch embedding, LayerNorm
    for i, (c, depth, ratio, sr) in enumerate(zip(widths, depths, mlp_ratios, sr_ratios)):
        if i > 0:  # 3x3 stride-2 patch embedding, LayerNorm
            total += widths[i - 1] * c * 9 + c + 2 * c
        hidden = ratio * c
        attention = (c * c + c) + (2 * c * c + 2 * c) + (c * c + c)  # q, kv, proj
        reduction = (c * c * sr * sr + c + 2 * c) if sr > 1 else 0  # sr conv, LayerNorm
        mlp = (c * hidden + hidden) + (hidden * 9 + hidden) + (hidden * c + c)  # fc1, depthwise 3x3, fc2
        total += depth * (2 * c + attention + reduction + 2 * c + mlp) + 2 * c  # norm1, norm2; the stage's norm
    return total + widths[-1] * classes + classes


def test_pvt_v2_b1_has_the_released_models_exact_size():
    """14.0M published; 14,009,000 is the released model's count (timm's pvt_v2_b1, equal by weight transfer in
    benchmarks/bench_transfer.py)."""
    cost = count_cost(load_preset("pvt_v2_b1"))
    assert cost.params == _pvt_v2_params((64, 128, 320, 512), (2, 2, 2, 2), (8, 8, 4, 4), (8, 4, 2, 1)) == 14_009_000
    assert [p.output_shape for p in cost.parts][1:5] == [(1, 56, 56, 64), (1, 28, 28, 128), (1, 14, 14, 320),
                                                         (1, 7, 7, 512)]
