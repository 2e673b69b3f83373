"""Weight transfer: every vitnas preset that timm also implements computes timm's function, not only timm's size.

For each pair, timm's model is built with its own random init, every floating tensor of its state dict is then moved
by N(0, 0.02) noise (so zero biases, unit norm gains and 1e-6 layer scales are exercised too, and BatchNorm running
variances stay positive), and the tensors are copied into the vitnas model by name (a few renaming rules per family)
and shape (a 1x1 conv's (out, in, 1, 1) weight lands in a linear layer's (out, in) of the same numel). Every tensor
on each side must be used exactly once. Both models then classify one random batch in eval mode; the table prints
the largest absolute difference of the logits, which must be <= 1e-4 for every pair.

PoolFormer v1 is compared with `head: pooled`: timm's PoolFormer averages before its final norm, while the original
code (sail-sg/poolformer) and the vitnas preset normalise first; tests/test_new_parts.py compares the preset itself
with a re-statement of the original. IdentityFormer-S12 is timm's MetaFormer class with identity mixers (timm
registers no identityformer model); PoolFormer's hybrid metaformer_ppaa_s12_224 is not in timm (tested likewise).

    benchmarks/setup_bench_env.sh                          # once: bench-env with timm (never a project dependency)
    nice -n 10 bench-env/bin/python benchmarks/bench_transfer.py [--batch 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from dataclasses import dataclass
from typing import Callable

from functools import partial

import timm
import torch
from timm.layers import LayerNorm2d
from torch import nn

from vitnas.search_spaces.model import build_model
from vitnas.search_spaces.presets import load_preset

TOLERANCE = 1e-4
NOISE = 0.02

# timm name -> vitnas name, applied in order; `stages.N.blocks.M` already line up for the hierarchical families
METAFORMER = ((r"^stem\.conv\.", "stem.proj."), (r"^stem\.norm\.", "stem.post."), (r"\.token_mixer\.act1\.", ".mixer.act."),
              (r"\.token_mixer\.", ".mixer."), (r"\.res_scale(\d)\.scale$", r".rs\1.gamma"),
              (r"\.layer_scale(\d)\.scale$", r".ls\1.gamma"), (r"\.mlp\.", ".channel."))
SWIN = ((r"^patch_embed\.proj\.", "stem.proj."), (r"^patch_embed\.norm\.", "stem.post."), (r"^layers\.", "stages."),
        (r"\.attn\.relative_position_bias_table$", ".mixer.relative_bias"), (r"\.attn\.", ".mixer."),
        (r"\.mlp\.", ".channel."), (r"^norm\.", "head.norm."))
CONVNEXT = ((r"^stem\.0\.", "stem.proj."), (r"^stem\.1\.", "stem.post."), (r"\.downsample\.0\.", ".downsample.norm."),
            (r"\.downsample\.1\.", ".downsample.conv."), (r"\.conv_dw\.", ".mixer.conv."), (r"\.gamma$", ".ls.gamma"),
            (r"\.mlp\.", ".channel."))
VIT = ((r"^cls_token$", "stem.cls_token"), (r"^pos_embed$", "stem.pos_embed"), (r"^patch_embed\.", "stem."),
       (r"^blocks\.", "stages.0.blocks."), (r"\.attn\.", ".mixer."), (r"\.mlp\.", ".channel."), (r"^head\.", "head.fc."),
       (r"^norm\.", "head.norm."))
MIXER = ((r"^blocks\.", "stages.0.blocks."), (r"\.mlp_tokens\.", ".mixer.mlp."), (r"\.mlp_channels\.", ".channel."),
         (r"^head\.", "head.fc."), (r"^norm\.", "head.norm."))
PVT = ((r"^patch_embed\.norm\.", "stem.post."), (r"^patch_embed\.", "stem."),
       (r"\.downsample\.proj\.", ".downsample.conv."), (r"\.attn\.", ".mixer."), (r"\.mlp\.", ".channel."),
       (r"^head\.", "head.fc."))
CONVMIXER = ((r"^stem\.0\.", "stem.proj."), (r"^stem\.2\.", "stem.post.1."), (r"^blocks\.", "stages.0.blocks."),
             (r"\.0\.fn\.0\.", ".mixer.conv."), (r"\.0\.fn\.2\.", ".norm1."), (r"(blocks\.\d+)\.1\.", r"\1.channel."),
             (r"(blocks\.\d+)\.3\.", r"\1.norm2."), (r"^head\.", "head.fc."))


@dataclass(frozen=True)
class Pair:
    preset: str
    timm_name: str
    rules: tuple[tuple[str, str], ...]
    timm_kwargs: dict = dataclasses.field(default_factory=dict)
    changes: dict = dataclasses.field(default_factory=dict)  # to the vitnas preset, where timm differs on purpose
    note: str = ""


PAIRS = (
    Pair("swin_tiny_patch4_window7_224", "swin_tiny_patch4_window7_224", SWIN),
    Pair("convnext_tiny", "convnext_tiny", CONVNEXT),
    Pair("caformer_s18", "caformer_s18", METAFORMER),
    Pair("convformer_s18", "convformer_s18", METAFORMER),
    Pair("poolformerv2_s12", "poolformerv2_s12", METAFORMER),
    Pair("identityformer_s12", "poolformerv2_s12", METAFORMER, {"token_mixers": nn.Identity},
         note="timm's MetaFormer, identity mixers"),
    # timm's PoolFormer pools, then applies a LayerNorm at eps 1e-6; at eps 1e-5 that is the preset's GroupNorm(1)
    # on the pooled vector, so only the order differs: `head: pooled` takes timm's
    Pair("poolformer_s12", "poolformer_s12", METAFORMER, {"output_norm": partial(LayerNorm2d, eps=1e-5)},
         {"head": "pooled"}, "head: pooled, timm's final LayerNorm at eps 1e-5"),
    Pair("deit_small", "deit_small_patch16_224", VIT),
    Pair("mixer_s16", "mixer_s16_224", MIXER),
    Pair("convmixer_768_32", "convmixer_768_32", CONVMIXER),
    Pair("pvt_v2_b1", "pvt_v2_b1", PVT),
)


def _renamed(key: str, rules: tuple[tuple[str, str], ...]) -> str:
    for pattern, replacement in rules:
        key = re.sub(pattern, replacement, key)
    return key


def transferred(source: nn.Module, target: nn.Module, rules: tuple[tuple[str, str], ...]) -> int:
    """Copy `source`'s state into `target` through the renaming rules; every tensor of both must pair up."""
    wanted = target.state_dict()
    copied: dict[str, torch.Tensor] = {}
    for key, tensor in source.state_dict().items():
        name = _renamed(key, rules)
        if name not in wanted or name in copied:
            raise SystemExit(f"timm's {key} -> {name}: no such vitnas tensor, or one taken twice")
        if tensor.numel() != wanted[name].numel():
            raise SystemExit(f"timm's {key} {tuple(tensor.shape)} does not fit {name} {tuple(wanted[name].shape)}")
        copied[name] = tensor.reshape(wanted[name].shape)
    left = sorted(set(wanted) - set(copied))
    if left:
        raise SystemExit(f"vitnas tensors timm has nothing for: {left[:5]}")
    target.load_state_dict(copied, strict=True)
    return len(copied)


def perturbed(model: nn.Module, seed: int) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.add_(NOISE * torch.randn(tensor.shape, generator=generator))
                if name.endswith("running_var"):
                    tensor.abs_()
    return model


def compare(pair: Pair, batch: int) -> dict:
    torch.manual_seed(0)
    theirs = perturbed(timm.create_model(pair.timm_name, pretrained=False, **pair.timm_kwargs), seed=1).eval()
    config = load_preset(pair.preset)
    if pair.changes:
        config = dataclasses.replace(config, **pair.changes)
    ours = build_model(config).eval()
    tensors = transferred(theirs, ours, pair.rules)
    images = torch.randn(batch, 3, config.image_size, config.image_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = theirs(images), ours(images)
    return {"preset": pair.preset, "timm": pair.timm_name, "params": sum(p.numel() for p in ours.parameters()),
            "timm_params": sum(p.numel() for p in theirs.parameters()), "tensors": tensors,
            "logit_scale": expected.abs().max().item(), "diff": (got - expected).abs().max().item(), "note": pair.note}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="presets to compare (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"timm {timm.__version__}, torch {torch.__version__}, batch {args.batch} at 224x224, noise {NOISE}")
    print(f"| {'vitnas preset':<30} | {'timm model':<30} | {'params':>11} | {'tensors':>7} | {'max |logit|':>11} "
          f"| {'max |diff|':>10} | ok |")
    print(f"|{'-' * 32}|{'-' * 32}|{'-' * 13}|{'-' * 9}|{'-' * 13}|{'-' * 12}|----|")
    failed = 0
    for pair in PAIRS:
        if args.only and pair.preset not in args.only:
            continue
        row = compare(pair, args.batch)
        ok = row["diff"] <= TOLERANCE and row["params"] == row["timm_params"]
        failed += not ok
        note = f"  ({row['note']})" if row["note"] else ""
        print(f"| {row['preset']:<30} | {row['timm']:<30} | {row['params']:>11,} | {row['tensors']:>7} "
              f"| {row['logit_scale']:>11.3f} | {row['diff']:>10.2e} | {'yes' if ok else 'NO':<3}|{note}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
