"""The one place that measures what a model costs: parameters, MACs, activation memory, latency, peak memory.

Counting convention (the one published MetaFormer/ViT/ConvMixer figures use):
- MACs are multiply-accumulates of convolutions (depthwise included: k*k per output element), linear layers and the
  two attention matmuls (Q @ K^T and softmax @ V). FLOPs = 2 x MACs. Norms, activations, softmax, pooling, residual
  adds and biases count zero.
- They are counted with torch's own `torch.utils.flop_counter.FlopCounterMode` on the `meta` device (no memory, no
  compute, so 224x224 presets count instantly) at batch 1; its FLOPs are 2 x MACs for conv/mm/addmm/bmm, so
  MACs = FLOPs / 2. On `meta`, F.scaled_dot_product_attention runs its math decomposition, which the counter sees as
  two bmm calls (2 x B x heads x L x L x head_dim MACs): exactly the convention. (On real CPU tensors torch 2.13's
  counter has no formula for the fused CPU flash kernel and would count attention as 0, one more reason to count on
  `meta`.) The explicit scale multiply and softmax are elementwise and not counted.
- Activation memory (per image, float32) is the sum of the output sizes of every leaf module in one forward pass:
  roughly what autograd keeps for the backward pass. It leaves out the tensors of functional ops between modules
  (residual adds, reshapes), the SDPA kernels' internal buffers and the parameter gradients/optimizer state.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vitnas.search_spaces.config import ArchConfig
from vitnas.search_spaces.model import build_model


@dataclass(frozen=True)
class PartCost:
    """One row of the per-stage table: `stem`, `stage 1`.., `head`."""
    name: str
    params: int
    macs: int
    activation_bytes: int
    output_shape: tuple[int, ...]


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int
    flops: int  # 2 x macs
    activation_bytes: int  # per image, float32, see module docstring
    input_shape: tuple[int, int, int]  # (C, H, W)
    parts: tuple[PartCost, ...]

    def to_dict(self) -> dict:
        return {"params": self.params, "macs": self.macs, "flops": self.flops,
                "activation_bytes": self.activation_bytes, "input_shape": list(self.input_shape),
                "parts": [{"name": p.name, "params": p.params, "macs": p.macs,
                           "activation_bytes": p.activation_bytes, "output_shape": list(p.output_shape)}
                          for p in self.parts]}


def _named_parts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The report rows: the builder's stem / stages / head, or the whole model when it has no such parts."""
    if all(hasattr(model, a) for a in ("stem", "stages", "head")):
        stages = [(f"stage {i + 1}", s) for i, s in enumerate(model.stages)]
        return [("stem", model.stem), *stages, ("head", model.head)]
    return [("model", model)]


def _meta_copy(model_or_cfg: nn.Module | ArchConfig) -> nn.Module:
    if isinstance(model_or_cfg, ArchConfig):
        with torch.device("meta"):
            return build_model(model_or_cfg)
    return copy.deepcopy(model_or_cfg).to("meta")


def _input_shape(model_or_cfg, input_shape) -> tuple[int, int, int]:
    if input_shape is not None:
        return tuple(input_shape)
    cfg = model_or_cfg if isinstance(model_or_cfg, ArchConfig) else getattr(model_or_cfg, "config", None)
    if cfg is None:
        raise ValueError("count_cost needs input_shape=(C, H, W) for a model without a `config`")
    return (cfg.in_chans, cfg.image_size, cfg.image_size)


def count_cost(model_or_cfg: nn.Module | ArchConfig, input_shape: tuple[int, int, int] | None = None) -> Cost:
    """Params, MACs/FLOPs and activation memory of one image, with a row per stem/stage/head.

    A config is built on the `meta` device; a model is copied there (its weights are untouched). `input_shape` is
    (C, H, W), taken from the config when not given.
    """
    shape = _input_shape(model_or_cfg, input_shape)
    model = _meta_copy(model_or_cfg).eval()
    parts = _named_parts(model)
    act_bytes = {name: 0 for name, _ in parts}
    out_shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, part in parts:
        hooks.append(part.register_forward_hook(
            lambda _m, _i, out, name=name: out_shapes.__setitem__(name, tuple(out.shape))))
        for leaf in part.modules():
            if not any(True for _ in leaf.children()):
                hooks.append(leaf.register_forward_hook(
                    lambda _m, _i, out, name=name: act_bytes.__setitem__(name, act_bytes[name] + _nbytes(out))))
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            model(torch.zeros((1, *shape), device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    flops_by_module = counter.get_flop_counts()
    root = type(model).__name__
    rows = []
    for name, part in parts:
        key = root if part is model else f"{root}.{_path_of(model, part)}"
        flops = sum(flops_by_module.get(key, {}).values())
        rows.append(PartCost(name, _count_params(part), flops // 2, act_bytes[name], out_shapes.get(name, ())))
    total_flops = counter.get_total_flops()
    return Cost(params=_count_params(model), macs=total_flops // 2, flops=2 * (total_flops // 2),
                activation_bytes=sum(act_bytes.values()), input_shape=shape, parts=tuple(rows))


def _path_of(model: nn.Module, part: nn.Module) -> str:
    return next(name for name, m in model.named_modules() if m is part)


def _nbytes(out) -> int:
    # float32 bytes whatever the (meta) dtype says, so the estimate reads the same for every run
    return out.numel() * 4 if isinstance(out, torch.Tensor) else 0


def _count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(model: nn.Module, input_shape: tuple[int, int, int], batch_size: int = 1,
                    device: str | torch.device = "cpu", *, warmup: int = 2, repeats: int = 5) -> float:
    """Inference latency in ms per image: the median over `repeats` timed forward passes of a batch (eval mode,
    no grad), divided by the batch size. The model is moved to `device` and its train/eval mode restored."""
    device = torch.device(device)
    was_training = model.training
    model.to(device).eval()
    x = torch.randn((batch_size, *input_shape), device=device)
    times = []
    try:
        with torch.no_grad():
            for i in range(warmup + repeats):
                _sync(device)
                start = time.perf_counter()
                model(x)
                _sync(device)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return sorted(times)[len(times) // 2] * 1000.0 / batch_size


def measure_peak_memory(model: nn.Module, input_shape: tuple[int, int, int], batch_size: int,
                        device: str | torch.device = "cpu") -> int:
    """Peak bytes one training step (forward + backward of a batch, AdamW state) needs.

    CUDA: the caching allocator's peak above its starting level during forward + backward, plus AdamW's two
    moments. CPU, where torch keeps no allocator statistics and the process's resident set mostly reuses freed
    pages: the bytes of every tensor autograd saves for the backward pass (counted once per storage, parameters
    excluded), plus the input batch and four copies of the parameters (weights, gradients, AdamW's two moments).
    Use a fresh model: the step runs in train mode and would move a trained model's BatchNorm statistics.
    """
    device = torch.device(device)
    model.to(device).train()
    x = torch.randn((batch_size, *input_shape), device=device)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        model(x).sum().backward()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base + 2 * param_bytes
    else:
        peak = _saved_activation_bytes(model, x) + x.numel() * x.element_size() + 4 * param_bytes
    model.zero_grad(set_to_none=True)
    return peak


def _saved_activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[int] = set()

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params and storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            pack.total += storage.nbytes()
        return tensor

    pack.total = 0
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(x).sum()
    loss.backward()
    return pack.total
