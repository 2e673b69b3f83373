"""The parts of Swin, ConvNeXt, PVT v2 and the MetaFormer baselines on tiny inputs, each against what its paper says it
computes; PoolFormer's presets against a re-statement of the original code (timm's differs, see
benchmarks/bench_transfer.py)."""
import torch
import torch.nn.functional as F
from torch import nn

from vitnas.search_spaces.blocks import ConvNeXtBlock, MetaFormerBlock, PatchMerging
from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.model import build_model
from vitnas.search_spaces.parts.activations import SquaredReLU, StarReLU
from vitnas.search_spaces.parts.attention import Attention
from vitnas.search_spaces.parts.norms import GroupNorm1NoBias, LayerNormNoBias
from vitnas.search_spaces.parts.random_mixing import RandomMixing
from vitnas.search_spaces.parts.sepconv import SepConv
from vitnas.search_spaces.parts.sr_attention import SpatialReductionAttention
from vitnas.search_spaces.parts.window import WindowAttention
from vitnas.search_spaces.presets import load_preset


def _influence(module: nn.Module, grid: int, dim: int) -> torch.Tensor:
    """(grid^2, grid^2) bool: entry [a, b] says whether changing input token a changes output token b."""
    torch.manual_seed(0)
    tokens = grid * grid
    x = torch.randn(1, tokens, dim)
    moved = x + torch.eye(tokens)[:, :, None]  # copy a moves token a
    with torch.no_grad():
        base = module(x.view(1, grid, grid, dim)).view(1, tokens, dim)
        out = module(moved.view(tokens, grid, grid, dim)).view(tokens, tokens, dim)
    return (out - base).abs().amax(dim=2) > 1e-6


def _groups(grid: int, window: int, offset: int) -> torch.Tensor:
    """Window number of each token when window borders along each axis sit at offset, offset + window, ... (and no
    window wraps around the grid's edge)."""
    band = (torch.arange(grid) + window - offset) // window
    return (band[:, None] * (grid + 1) + band[None, :]).flatten()


def test_windows_attend_only_within_themselves_and_shifted_windows_never_wrap():
    grid, window, dim = 8, 4, 8
    for shifted, offset in ((False, 0), (True, window // 2)):
        attention = WindowAttention(dim, 2, window, shifted, grid, qkv_bias=True).eval()
        groups = _groups(grid, window, offset)
        expected = groups[:, None] == groups[None, :]
        assert torch.equal(_influence(attention, grid, dim), expected)
    # the shifted layout has 9 windows: a full one in the middle, cut ones along the edges, none across an edge
    assert len(set(_groups(grid, window, window // 2).tolist())) == 9


def test_relative_position_bias_is_indexed_by_query_minus_key():
    """A large bias for offset (dy, dx) = (0, +1) makes each query copy the key one column to its left, where there
    is one in its window (Swin's table row (dy + w - 1) * (2w - 1) + dx + w - 1)."""
    grid = window = 4
    attention = WindowAttention(4, 1, window, False, grid, qkv_bias=False)
    with torch.no_grad():
        attention.qkv.weight.zero_()
        attention.qkv.weight[8:].copy_(torch.eye(4))  # q = k = 0, v = x
        attention.proj.weight.copy_(torch.eye(4))
        attention.proj.bias.zero_()
        attention.relative_bias.zero_()
        attention.relative_bias[(0 + window - 1) * (2 * window - 1) + 1 + window - 1] = 100.0
        x = torch.randn(1, grid, grid, 4)
        out = attention(x)
    assert torch.allclose(out[:, :, 1:], x[:, :, :-1], atol=1e-4)


def test_window_as_large_as_the_grid_is_global_attention_without_shift():
    cfg = ArchConfig.from_dict({"image_size": 8, "in_chans": 1, "num_classes": 2, "stem": {"patch_size": 2},
                                "stages": [{"depth": 2, "width": 8, "mixer": {"kind": "window", "heads": 2,
                                                                              "window_size": 7}}]})
    mixers = [block.mixer for block in build_model(cfg).stages[0].blocks]
    assert [(m.window, m.shifted) for m in mixers] == [(4, False), (4, False)]


def test_alternate_blocks_shift():
    cfg = ArchConfig.from_dict({"image_size": 16, "in_chans": 1, "num_classes": 2, "stem": {"patch_size": 2},
                                "stages": [{"depth": 3, "width": 8, "mixer": {"kind": "window", "heads": 2,
                                                                              "window_size": 4}}]})
    assert [b.mixer.shifted for b in build_model(cfg).stages[0].blocks] == [False, True, False]
    unshifted = {**cfg.stages[0].mixer.to_dict(), "shift": False}
    cfg = ArchConfig.from_dict({**cfg.to_dict(), "stages": [{"depth": 3, "width": 8, "mixer": unshifted}]})
    assert [b.mixer.shifted for b in build_model(cfg).stages[0].blocks] == [False, False, False]


def test_patch_merging_concatenates_swins_2x2_order():
    """Swin: x0 = x[0::2, 0::2], x1 = x[1::2, 0::2], x2 = x[0::2, 1::2], x3 = x[1::2, 1::2], concatenated."""
    merge = PatchMerging(2, 8, nn.Identity, 1e-5)
    with torch.no_grad():
        merge.reduction.weight.copy_(torch.eye(8))
    x = torch.randn(1, 4, 6, 2)
    expected = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
    assert torch.equal(merge(x), expected)


def test_starrelu_and_squared_relu_values_and_gradients():
    x = torch.tensor([-1.0, 0.0, 2.0])
    assert SquaredReLU()(x).tolist() == [0.0, 0.0, 4.0]
    star = StarReLU()
    with torch.no_grad():
        star.scale.fill_(2.0)
        star.bias.fill_(0.5)
    out = star(x)
    assert out.tolist() == [0.5, 0.5, 8.5]
    out.sum().backward()
    assert star.scale.grad.item() == 4.0 and star.bias.grad.item() == 3.0  # sum of relu(x)^2; one per element


def test_norms_without_bias():
    x = torch.randn(2, 3, 3, 6)
    ln = LayerNormNoBias(6, eps=1e-6)
    assert [n for n, _ in ln.named_parameters()] == ["weight"]
    with torch.no_grad():
        ln.weight.fill_(2.0)
    out = ln(x)
    assert torch.allclose(out.mean(-1), torch.zeros(2, 3, 3), atol=1e-5)  # per token, no bias to shift it
    assert torch.allclose(out, 2 * F.layer_norm(x, (6,), eps=1e-6), atol=1e-6)
    gn = GroupNorm1NoBias(6, eps=1e-6)
    assert list(gn.state_dict()) == ["weight"]
    out = gn(x)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5)  # over positions and channels
    assert not torch.allclose(out.mean(-1), torch.zeros(2, 3, 3), atol=1e-3)


def test_sepconv_is_pointwise_depthwise_pointwise_without_biases():
    mixer = SepConv(4, 2.0, 3, nn.Identity)
    assert all(m.bias is None for m in (mixer.pwconv1, mixer.dwconv, mixer.pwconv2))
    assert sum(p.numel() for p in mixer.parameters()) == 4 * 8 + 8 * 9 + 8 * 4
    x = torch.randn(2, 5, 5, 4)
    hidden = F.conv2d((x @ mixer.pwconv1.weight.T).permute(0, 3, 1, 2), mixer.dwconv.weight, padding=1, groups=8)
    assert torch.allclose(mixer(x), hidden.permute(0, 2, 3, 1) @ mixer.pwconv2.weight.T, atol=1e-5)


def test_random_mixing_is_a_frozen_convex_mixing():
    mixer = RandomMixing(9)
    assert list(mixer.parameters()) == [] and list(mixer.state_dict()) == ["matrix"]
    assert torch.allclose(mixer.matrix.sum(dim=1), torch.ones(9)) and (mixer.matrix > 0).all()
    constant = torch.ones(2, 3, 3, 4) * 3.0
    assert torch.allclose(mixer(constant), constant)  # a convex combination of equal tokens
    x = torch.randn(1, 3, 3, 4)
    assert torch.allclose(mixer(x).view(9, 4), mixer.matrix @ x.view(9, 4))


def _zero_branch(mlp: nn.Module) -> None:
    with torch.no_grad():
        mlp.fc2.weight.zero_()
        if mlp.fc2.bias is not None:
            mlp.fc2.bias.zero_()


def test_convnext_block_has_one_residual_and_one_norm():
    block = ConvNeXtBlock(4, nn.Linear(4, 4), nn.LayerNorm, 1e-6, nn.GELU, 4.0, 1e-6, 0.0, True)
    assert [n for n, m in block.named_children() if isinstance(m, nn.LayerNorm)] == ["norm"]
    _zero_branch(block.channel)
    x = torch.randn(2, 3, 3, 4)
    assert torch.equal(block(x), x)  # the mixer sits inside the one residual branch: nothing else reaches the output


def test_residual_scale_multiplies_the_skip_path():
    block = MetaFormerBlock(4, nn.Identity(), nn.LayerNorm, 1e-6, nn.GELU, 2.0, None, 0.0, False, res_scale=1.0,
                            mlp_bias=False)
    assert block.channel.fc1.bias is None and block.rs1.gamma.tolist() == [1.0] * 4
    x = torch.randn(2, 3, 3, 4)
    _zero_branch(block.channel)
    with torch.no_grad():
        block.rs1.gamma.fill_(0.5)
        block.rs2.gamma.fill_(3.0)
    # identity mixer: x -> 0.5 x + norm1(x), then 3 (...) + 0
    assert torch.allclose(block(x), 3.0 * (0.5 * x + F.layer_norm(x, (4,), block.norm1.weight, block.norm1.bias,
                                                                  1e-6)), atol=1e-5)


def _tiny(**overrides) -> ArchConfig:
    data = {"image_size": 16, "in_chans": 1, "num_classes": 3, "stem": {"kind": "patch", "patch_size": 2},
            "stages": [{"depth": 1, "width": 8, "mixer": "pool"}, {"depth": 1, "width": 16, "mixer": "pool"}]}
    return ArchConfig.from_dict({**data, **overrides})


def test_heads_pool_before_or_after_the_norm():
    x = torch.randn(2, 4, 4, 16)
    gap = build_model(_tiny(norm="groupnorm")).head
    pooled = build_model(_tiny(norm="groupnorm", head="pooled")).head
    pooled.load_state_dict(gap.state_dict())
    assert torch.allclose(gap(x), gap.fc(gap.norm(x).mean(dim=(1, 2))), atol=1e-6)
    assert torch.allclose(pooled(x), gap.fc(gap.norm(x.mean(dim=(1, 2)))), atol=1e-6)
    assert not torch.allclose(gap(x), pooled(x), atol=1e-3)
    mlp = build_model(_tiny(head="pooled", head_mlp_ratio=2.0, head_norm="layernorm", norm="groupnorm")).head
    fc = mlp.fc
    assert (fc.fc1.out_features, type(fc.act), type(fc.norm), fc.fc2.in_features) == (32, SquaredReLU, nn.LayerNorm, 32)
    pooled_in = mlp.norm(x.mean(dim=(1, 2)))
    assert torch.allclose(mlp(x), fc.fc2(fc.norm(F.relu(fc.fc1(pooled_in)) ** 2)), atol=1e-6)


def test_downsampling_kinds():
    x = torch.randn(1, 1, 16, 16)
    for kind, kernel, norm in (("conv", 3, False), ("norm_conv", 3, True), ("norm_patch", 2, True)):
        model = build_model(_tiny(downsample=kind))
        down = model.stages[1].downsample
        assert (down.conv.kernel_size, isinstance(down.norm, nn.LayerNorm)) == ((kernel, kernel), norm)
        assert model.stages[1](model.stages[0](model.stem(x))).shape == (1, 4, 4, 16)
    merged = build_model(_tiny(downsample="patch_merging", downsample_norm="layernorm_nobias", norm="batchnorm"))
    assert isinstance(merged.stages[1].downsample.norm, LayerNormNoBias)
    assert isinstance(merged.stages[0].blocks[0].norm1, nn.BatchNorm1d)


def test_stage_position_embedding_follows_the_downsampling():
    stages = [{"depth": 1, "width": 8, "mixer": "pool"},
              {"depth": 1, "width": 16, "mixer": {"kind": "attention", "heads": 2}, "pos_embed": True}]
    model = build_model(_tiny(stages=stages))
    embedding = model.stages[1].pos_embed
    assert embedding.weight.shape == (1, 4, 4, 16)
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        embedding.weight.zero_()
        plain = model.stages[1](x)
        embedding.weight.fill_(1.0)
        assert torch.allclose(model.stages[1].blocks(model.stages[1].downsample(x) + 1.0), model.stages[1](x))
        assert not torch.allclose(plain, model.stages[1](x))


# ---- PoolFormer as its authors wrote it (sail-sg/poolformer): NCHW, the norm before the global pool


class _Original(nn.Module):
    """PoolFormer-S12's layout re-stated from the paper's code: 7x7/4 patch embedding, per stage blocks of
    x + ls1 * mixer(norm1(x)), x + ls2 * mlp(norm2(x)) with 1x1-conv MLPs, 3x3/2 embeddings between stages, an
    optional position embedding added before a stage, then norm, mean over positions, linear."""

    def __init__(self, widths, depths, attention, norm, pos_grid):
        super().__init__()
        self.norm_kind, self.attention = norm, attention
        self.embed = nn.ModuleList([nn.Conv2d(3, widths[0], 7, 4, 2)] + [
            nn.Conv2d(widths[i - 1], widths[i], 3, 2, 1) for i in range(1, len(widths))])
        self.pos = nn.ParameterDict({str(i): nn.Parameter(torch.randn(1, w, pos_grid, pos_grid))
                                     for i, w in enumerate(widths) if i == 2 and attention[i]})
        self.blocks = nn.ModuleList()
        for width, depth, attends in zip(widths, depths, attention):
            self.blocks.append(nn.ModuleList([nn.ModuleDict({
                "norm1": nn.GroupNorm(1, width), "norm2": nn.GroupNorm(1, width),
                "fc1": nn.Conv2d(width, 4 * width, 1), "fc2": nn.Conv2d(4 * width, width, 1),
                "qkv": nn.Linear(width, 3 * width, bias=False) if attends else nn.Identity(),
                "proj": nn.Linear(width, width) if attends else nn.Identity()}) for _ in range(depth)]))
        self.scales = nn.ParameterList([nn.Parameter(torch.rand(2, w)) for w, d in zip(widths, depths)
                                        for _ in range(d)])
        self.norm = nn.GroupNorm(1, widths[-1])
        self.head = nn.Linear(widths[-1], 10)

    def _norm(self, layer: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
        if self.norm_kind == "group":  # statistics over channels and positions
            return layer(x)
        mean, var = x.mean(1, keepdim=True), x.var(1, keepdim=True, unbiased=False)  # LayerNormChannel
        return layer.weight[:, None, None] * (x - mean) / torch.sqrt(var + 1e-5) + layer.bias[:, None, None]

    @staticmethod
    def _attend(block: nn.ModuleDict, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        q, k, v = block["qkv"](tokens).view(n, h * w, 3, c // 32, 32).permute(2, 0, 3, 1, 4)
        weights = ((q * 32 ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        return block["proj"]((weights @ v).transpose(1, 2).reshape(n, h * w, c)).transpose(1, 2).reshape(n, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scales = iter(self.scales)
        for i, (embed, stage) in enumerate(zip(self.embed, self.blocks)):
            x = embed(x)
            if str(i) in self.pos:
                x = x + self.pos[str(i)]
            for block in stage:
                ls = next(scales)[:, :, None, None]
                y = self._norm(block["norm1"], x)
                mixed = self._attend(block, y) if self.attention[i] else F.avg_pool2d(
                    y, 3, 1, 1, count_include_pad=False) - y
                x = x + ls[0] * mixed
                x = x + ls[1] * block["fc2"](F.gelu(block["fc1"](self._norm(block["norm2"], x))))
        return self.head(self._norm(self.norm, x).mean(dim=(2, 3)))


def _into_vitnas(original: _Original, model: nn.Module) -> None:
    """The original's weights, by position, into the vitnas model."""
    state = {}
    for i, embed in enumerate(original.embed):
        prefix = "stem.proj" if i == 0 else f"stages.{i}.downsample.conv"
        state |= {f"{prefix}.weight": embed.weight, f"{prefix}.bias": embed.bias}
    scales = iter(original.scales)
    for i, stage in enumerate(original.blocks):
        if str(i) in original.pos:
            state[f"stages.{i}.pos_embed.weight"] = original.pos[str(i)].permute(0, 2, 3, 1)
        for j, block in enumerate(stage):
            prefix, ls = f"stages.{i}.blocks.{j}", next(scales)
            state |= {f"{prefix}.ls1.gamma": ls[0], f"{prefix}.ls2.gamma": ls[1]}
            for name in ("norm1", "norm2"):
                state |= {f"{prefix}.{name}.weight": block[name].weight, f"{prefix}.{name}.bias": block[name].bias}
            for name in ("fc1", "fc2"):
                state |= {f"{prefix}.channel.{name}.weight": block[name].weight.flatten(1),
                          f"{prefix}.channel.{name}.bias": block[name].bias}
            if original.attention[i]:
                state |= {f"{prefix}.mixer.qkv.weight": block["qkv"].weight,
                          f"{prefix}.mixer.proj.weight": block["proj"].weight,
                          f"{prefix}.mixer.proj.bias": block["proj"].bias}
    state |= {"head.norm.weight": original.norm.weight, "head.norm.bias": original.norm.bias,
              "head.fc.weight": original.head.weight, "head.fc.bias": original.head.bias}
    model.load_state_dict(state, strict=True)


def _randomised(module: nn.Module) -> nn.Module:
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator))
    return module.eval()


def _check_against_original(preset: str, attention: list[bool], norm: str) -> None:
    """The preset's wiring at 64x64 (grids 16, 8, 4, 2), 10 classes and one block per stage: its code, at a small
    fraction of the cost."""
    cfg = load_preset(preset).with_data(image_size=64, num_classes=10)
    cfg = ArchConfig.from_dict({**cfg.to_dict(), "stages": [{**s, "depth": 1} for s in cfg.to_dict()["stages"]]})
    torch.manual_seed(0)
    original = _randomised(_Original([s.width for s in cfg.stages], [s.depth for s in cfg.stages], attention, norm,
                                     pos_grid=4))
    model = build_model(cfg).eval()
    _into_vitnas(original, model)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert (model(images) - original(images)).abs().max().item() <= 1e-4


def test_poolformer_s12_equals_the_original_which_normalises_before_pooling():
    _check_against_original("poolformer_s12", [False] * 4, "group")


def test_poolformer_hybrid_equals_the_original_with_its_stage_3_position_embedding():
    _check_against_original("metaformer_ppaa_s12_224", [False, False, True, True], "layer")


def test_spatial_reduction_attention_ratio_1_is_plain_attention():
    reduced = SpatialReductionAttention(8, 2, 1, "conv", qkv_bias=True)
    plain = Attention(8, 2, qkv_bias=True, temperature=1.0)
    with torch.no_grad():
        plain.qkv.weight.copy_(torch.cat([reduced.q.weight, reduced.kv.weight]))
        plain.qkv.bias.copy_(torch.cat([reduced.q.bias, reduced.kv.bias]))
        plain.proj.load_state_dict(reduced.proj.state_dict())
        x = torch.randn(2, 4, 4, 8)
        assert torch.allclose(reduced(x), plain(x), atol=1e-5)


def test_pooled_keys_and_values_see_one_token_per_block():
    """With average pooling by 2, a grid whose 2x2 blocks are constant gives the keys and values of its 2x2 grid of
    block values: each query attends over 4 tokens, not 16."""
    mixer = SpatialReductionAttention(8, 1, 2, "pool", qkv_bias=False)
    coarse = torch.randn(1, 2, 2, 8)
    x = coarse.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    with torch.no_grad():
        q = mixer.q(x).view(1, 16, 8)
        k, v = mixer.kv(mixer.norm(coarse.view(1, 4, 8))).chunk(2, dim=-1)
        expected = mixer.proj(torch.softmax(q @ k.transpose(1, 2) / 8 ** 0.5, dim=-1) @ v).view(1, 4, 4, 8)
        assert torch.allclose(mixer(x), expected, atol=1e-5)
    assert sum(p.numel() for p in mixer.parameters()) == 8 * 8 + 8 * 16 + 8 * 8 + 8 + 16  # no conv: pooling
