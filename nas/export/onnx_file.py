"""model.onnx of an export: torch's own exporter (torch.export based, needs onnx + onnxscript), with a dynamic batch
size, checked with ONNX Runtime against the PyTorch model on random images: logits within 1e-4 (times the largest
logit where that exceeds 1). The packages are the `onnx` extra."""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from vitnas.errors import UserError
from vitnas.nas.export.check import random_images

ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
ONNX_TOLERANCE = 1e-4


def require_onnx() -> None:
    """Fail before any work when --onnx cannot be done."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"--onnx needs {', '.join(missing)}: pip install 'vitnas[onnx]', or leave out --onnx")


def write_onnx(model: nn.Module, input_shape: tuple[int, int, int], path: Path) -> float:
    """Export `model` to `path`; returns the largest absolute logit difference between ONNX Runtime and PyTorch."""
    import onnxruntime  # the optional extra: imported only when asked for

    model.eval()
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter():
        program = torch.onnx.export(model, (random_images(input_shape, 2),), dynamo=True, input_names=["images"],
                                    output_names=["logits"], dynamic_shapes=({0: batch},), verbose=False)
        program.save(str(path), external_data=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = random_images(input_shape, 3, seed=1)  # another batch size than the example: the batch is dynamic
    (got,) = session.run(["logits"], {"images": images.numpy()})
    with torch.no_grad():
        want = model(images)
    difference = (torch.from_numpy(got) - want).abs().max().item()
    # float32 kernels of two runtimes agree to a few ulps of the logits' scale, so large logits get a wider margin
    allowed = ONNX_TOLERANCE * max(1.0, want.abs().max().item())
    if not difference <= allowed:
        raise UserError(f"the ONNX model's logits differ from PyTorch's by {difference:.3g} (more than "
                        f"{allowed:.3g}): export without --onnx, or report this architecture")
    return difference


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs and warns about its own internals (torchvision ops it skips, deprecations in torch.export):
    nothing a user of `vitnas export` can act on, so it is kept off the terminal."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
