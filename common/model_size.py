"""Model size, as the tiny suite reports it: parameters, the serialized fp32 weights in KB, and the serialized
int8 weights in KB (MLPerf Tiny's constraint is on the deployed int8 model).

int8 here is post-training weight quantization, per output channel and symmetric (zero point 0), of every
weight tensor with two or more dimensions (convolution and linear weights), with torchao's affine quantization
primitives (torch's own quantized tensors are deprecated): each such weight serializes as an int8 tensor, one
byte per weight, plus a float32 scale per output channel. Biases, BatchNorm parameters and buffers stay float32, as they are small (a microcontroller build would
fold BatchNorm into the convolutions and store int32 biases; the figure is an honest upper bound of that).
`int8_dequantized` gives a copy of the model whose weights are exactly the int8 values, so the int8 model's
quality is measured with the benchmark's own evaluation.

    parameter_count(model), size_kb(model), int8_size_kb(model), int8_dequantized(model)
"""
from __future__ import annotations

import copy
import io

import torch


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _serialized_kb(state: dict) -> float:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer().nbytes / 1024


def size_kb(model: torch.nn.Module) -> float:
    """KB of the serialized float state dict (weights and buffers, as torch.save writes them)."""
    return _serialized_kb({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})


def _quantizable(name: str, tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() and tensor.dim() >= 2 and name.endswith("weight")


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One weight tensor as (int8 values, float32 scale per output channel), symmetric, zero point 0."""
    from torchao.quantization.quant_primitives import MappingType, choose_qparams_affine, quantize_affine

    weight = weight.detach().float().cpu()
    block = (1, *weight.shape[1:])  # one quantization block per output channel
    scale, zero_point = choose_qparams_affine(weight, MappingType.SYMMETRIC, block, torch.int8, quant_min=-127,
                                              quant_max=127, scale_dtype=torch.float32)
    assert not zero_point.any()  # symmetric: the zero point is 0 and is not stored
    return quantize_affine(weight, block, scale, zero_point, torch.int8, quant_min=-127, quant_max=127), scale


def dequantize_weight(values: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    from torchao.quantization.quant_primitives import dequantize_affine

    return dequantize_affine(values, (1, *values.shape[1:]), scale, torch.zeros_like(scale, dtype=torch.int32),
                             torch.int8, quant_min=-127, quant_max=127)


def int8_state_dict(model: torch.nn.Module) -> dict:
    """The state dict with every conv/linear weight stored as int8 values (`<name>`) and per-channel float32
    scales (`<name>.scale`); everything else unchanged."""
    state = {}
    for name, tensor in model.state_dict().items():
        if _quantizable(name, tensor):
            state[name], state[name + ".scale"] = quantize_weight(tensor)
        else:
            state[name] = tensor.detach().cpu().clone()
    return state


def int8_size_kb(model: torch.nn.Module) -> float:
    """KB of the serialized int8 state dict (see the module docstring)."""
    return _serialized_kb(int8_state_dict(model))


def int8_dequantized(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of the model whose conv/linear weights are the int8 values (dequantized to float), for scoring."""
    copied = copy.deepcopy(model)
    quantized = int8_state_dict(model)
    state = {name: dequantize_weight(t, quantized[name + ".scale"]) if name + ".scale" in quantized else t
             for name, t in quantized.items() if not name.endswith(".scale") or name[:-6] not in quantized}
    copied.load_state_dict(state)
    return copied
