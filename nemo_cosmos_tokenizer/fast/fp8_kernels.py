"""The FP8 convolution kernels behind one function, :func:`fp8_conv2d`, and what was found about them (issue 24).

Which real library runs an E4M3 convolution with float32 accumulation on Hopper, from Python (research, 2026-12-07):

* **cuDNN, through its frontend's graph API** (PyPI ``nvidia-cudnn-frontend``, module ``cudnn``). The frontend's
  C++ sample ``samples/cpp/convolution/fp8_fprop.cpp`` (NVIDIA/cudnn-frontend) builds ``conv_fprop`` on
  ``FP8_E4M3`` NHWC image and filter with ``intermediate/compute_data_type=FLOAT``, then pointwise ``MUL`` nodes
  for the descales, and skips unless cuDNN >= 8.6, CUDA >= 12.0 and a Hopper GPU; the legacy sample
  ``samples/legacy_samples/fp8_sample.cpp`` (``run_fp8_conv_scale``) says "Fusion with fp8 inputs is only
  supported on Hopper or later". The Python graph has the same nodes (``pygraph.conv_fprop(image, weight,
  padding, stride, dilation)``, ``mul``, ``add``; ``tensor_like`` maps ``torch.float8_e4m3fn`` to
  ``data_type.FP8_E4M3`` in ``python/cudnn/datatypes.py``; ``build([heur_mode.A, heur_mode.FALLBACK])``,
  ``execute({tensor: buffer}, workspace, handle=...)``; checked in the 1.32.0 wheel). NVIDIA's TensorRT runs
  kernels named ``sm90_xmma_fprop_implicit_gemm_e4m3f16_e4m3f32_f32_nhwckrsc_nhwc_..._bias_f16`` (NVIDIA/cutlass
  issue 1750), i.e. Hopper has dedicated FP8 implicit-GEMM fprop kernels with a bias epilogue; CUTLASS's C++
  convolution templates take FP8 element types on sm90 (same thread). Known problem: FP8 *wgrad* on H100 through
  the frontend ran 50-100x slower than FP16 (NVIDIA/cudnn-frontend issue 103, open); nothing is reported about
  fprop speed.
  The frontend's newer "frost" FP8 convolution engines (``test/python/conv/frost``) require sm100 (Blackwell).
* **Triton**: ``tl.dot`` takes ``float8e4nv`` (E4M3) operands with a float32 accumulator on sm89+; on sm90 its
  default lets the tensor core accumulate all of K in reduced precision (``max_num_imprecise_acc_default = 2**30``
  for capability 90 in ``triton/backends/nvidia/compiler.py``), a per-dot ``max_num_imprecise_acc`` bounds that.
  There is no Triton convolution to reuse (Inductor's conv template is bf16/fp32 and lost to cuDNN on every layer
  here, BENCHMARKS.md run 6), so :mod:`.fp8_triton` is our own implicit GEMM.
* **torch._scaled_mm** (cuBLASLt): FP8 GEMM with float32 per-tensor or row-wise scales and a bf16 output; needs
  ``mat2`` column-major and both K and N multiples of 16 (``_check_scaled_mm_sizes`` in
  ``torch/_meta_registrations.py``). Only the 1x1 convolutions are plain GEMMs; a 3x3 would need an im2col copy
  nine times the activation, so it is not a path for the convolutions that carry the FLOPs.

Choice: ``fp8_kernel="cudnn"`` is the default because cuDNN's Hopper FP8 implicit-GEMM kernels are the ones most
likely to beat its bf16 kernels (which already run at ~740 TFLOP/s here), with the descale and bias fused into the
epilogue. ``"triton"`` is the second path to measure beside it (Triton ships with CUDA torch builds; the cuDNN
frontend wheel has to be installed), and ``"emulated"`` is :func:`.fp8_numerics.reference_fp8_conv2d`. Both GPU
kernels sit behind one ``torch.library`` custom op, so ``torch.compile(fullgraph=True)`` keeps the whole network in
one graph and fuses the input quantization into the producer (norm + SiLU) kernel; the libraries are imported on
first use (``import_kernel_library`` names the install command when one is missing).
"""

from __future__ import annotations

from typing import Any

import torch

from .fp8_numerics import import_kernel_library, reference_fp8_conv2d

__all__ = ["fp8_conv2d", "conv_output_shape"]

_OP = "nemo_cosmos_tokenizer::fp8_conv2d"


def conv_output_shape(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: tuple[int, int],
                      padding: tuple[int, int]) -> tuple[int, int, int, int]:
    """``[N, O, H', W']`` of a 2D convolution of ``x_shape`` ``[N, C, H, W]`` with ``w_shape`` ``[O, C, kh, kw]``."""
    n, _, h, w = x_shape
    o, _, kh, kw = w_shape
    return n, o, (h + 2 * padding[0] - kh) // stride[0] + 1, (w + 2 * padding[1] - kw) // stride[1] + 1


def fp8_conv2d(x_q: torch.Tensor, w_q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
               stride: tuple[int, int], padding: tuple[int, int], out_dtype: torch.dtype, kernel: str) -> torch.Tensor:
    """``conv(x_q, w_q) * scale + bias`` with the FP8 ``kernel`` (``"cudnn"``, ``"triton"`` or ``"emulated"``).

    ``x_q`` ``[N, C, H, W]`` and ``w_q`` ``[O, C, kh, kw]`` in ``float8_e4m3fn`` (channels-last memory for the GPU
    kernels), ``scale`` ``[O]`` float32 (input scale times weight scale), ``bias`` ``[O]`` float32 or ``None``.
    Returns ``[N, O, H', W']`` in ``out_dtype``, channels-last from the GPU kernels. The numerics are those of
    :func:`.fp8_numerics.reference_fp8_conv2d`, up to float32 summation order.
    """
    if kernel == "emulated":
        return reference_fp8_conv2d(x_q, w_q, scale, bias, stride, padding, out_dtype)
    x_q = x_q.contiguous(memory_format=torch.channels_last)  # both GPU kernels read NHWC rows
    return torch.ops.nemo_cosmos_tokenizer.fp8_conv2d(x_q, w_q, scale, bias, list(stride), list(padding), out_dtype,
                                                      kernel)


@torch.library.custom_op(_OP, mutates_args=())
def _fp8_conv2d_op(x_q: torch.Tensor, w_q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                   stride: list[int], padding: list[int], out_dtype: torch.dtype, kernel: str) -> torch.Tensor:
    if x_q.device.type != "cuda":
        raise RuntimeError(f"fp8_kernel={kernel!r} runs on CUDA tensors, got {x_q.device} (use fp8_kernel='emulated')")
    st, pad = (stride[0], stride[1]), (padding[0], padding[1])
    if kernel == "triton":
        import_kernel_library("triton")
        from .fp8_triton import triton_fp8_conv2d

        return triton_fp8_conv2d(x_q, w_q, scale, bias, st, pad, out_dtype)
    if kernel == "cudnn":
        return _cudnn_conv2d(x_q, w_q, scale, bias, st, pad, out_dtype)
    raise ValueError(f"unknown fp8 kernel {kernel!r}")


@_fp8_conv2d_op.register_fake
def _fp8_conv2d_fake(x_q: torch.Tensor, w_q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                     stride: list[int], padding: list[int], out_dtype: torch.dtype, kernel: str) -> torch.Tensor:
    # The same shape, dtype and (channels-last) strides as both GPU kernels allocate.
    shape = conv_output_shape(tuple(x_q.shape), tuple(w_q.shape), (stride[0], stride[1]), (padding[0], padding[1]))
    return torch.empty(shape, dtype=out_dtype, device=x_q.device, memory_format=torch.channels_last)


# --------------------------------------------------------------------------------------------------------- cuDNN
class _CudnnPlan:
    """One built cuDNN graph (per shape, strides, dtype, device) and its workspace."""

    def __init__(self, cudnn: Any, handle: Any, x_q: torch.Tensor, w_q: torch.Tensor, scale: torch.Tensor,
                 bias: torch.Tensor | None, stride: tuple[int, int], padding: tuple[int, int],
                 out: torch.Tensor) -> None:
        dt = cudnn.data_type
        out_type = {torch.bfloat16: dt.BFLOAT16, torch.float16: dt.HALF, torch.float32: dt.FLOAT}[out.dtype]
        graph = cudnn.pygraph(io_data_type=out_type, intermediate_data_type=dt.FLOAT, compute_data_type=dt.FLOAT,
                              handle=handle)
        self.x = graph.tensor_like(x_q, name="x")  # FP8_E4M3, NHWC strides
        self.w = graph.tensor_like(w_q, name="w")
        acc = graph.conv_fprop(image=self.x, weight=self.w, padding=list(padding), stride=list(stride),
                               dilation=[1, 1], compute_data_type=dt.FLOAT, name="conv")  # float32 sums
        self.scale = graph.tensor_like(scale.view(1, -1, 1, 1), name="scale")  # [1, O, 1, 1] float32 descale
        y = graph.mul(a=acc, b=self.scale, compute_data_type=dt.FLOAT, name="descale")
        self.bias = None
        if bias is not None:
            self.bias = graph.tensor_like(bias.view(1, -1, 1, 1), name="bias")
            y = graph.add(a=y, b=self.bias, compute_data_type=dt.FLOAT, name="bias_add")
        y.set_output(True).set_data_type(out_type).set_dim(list(out.shape)).set_stride(list(out.stride()))
        self.y = y
        try:
            graph.build([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        except Exception as err:
            raise RuntimeError(
                f"cuDNN {cudnn.backend_version_string()} has no engine for this FP8 convolution (input "
                f"{tuple(x_q.shape)}, weight {tuple(w_q.shape)}, stride {stride}, padding {padding}, per-channel "
                f"descale + bias, {out.dtype} output): {err}. Try fp8_kernel='triton'"
            ) from err
        self.graph = graph
        self.workspace = torch.empty(max(graph.get_workspace_size(), 1), dtype=torch.uint8, device=x_q.device)


_CUDNN_HANDLES: dict[int, Any] = {}
_CUDNN_PLANS: dict[tuple, _CudnnPlan] = {}


def _cudnn_conv2d(x_q: torch.Tensor, w_q: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                  stride: tuple[int, int], padding: tuple[int, int], out_dtype: torch.dtype) -> torch.Tensor:
    cudnn = import_kernel_library("cudnn")
    device = x_q.device
    shape = conv_output_shape(tuple(x_q.shape), tuple(w_q.shape), stride, padding)
    out = torch.empty(shape, dtype=out_dtype, device=device, memory_format=torch.channels_last)
    scale, bias = scale.float().contiguous(), None if bias is None else bias.float().contiguous()
    handle = _CUDNN_HANDLES.get(device.index)
    if handle is None:
        handle = _CUDNN_HANDLES[device.index] = cudnn.create_handle()
    # A graph is built for fixed shapes and strides (the fast path compiles fixed shapes too): one per layer shape.
    key = (device.index, tuple(x_q.shape), x_q.stride(), tuple(w_q.shape), w_q.stride(), stride, padding, out_dtype,
           bias is not None)
    plan = _CUDNN_PLANS.get(key)
    if plan is None:
        plan = _CUDNN_PLANS[key] = _CudnnPlan(cudnn, handle, x_q, w_q, scale, bias, stride, padding, out)
    cudnn.set_stream(handle=handle, stream=torch.cuda.current_stream(device).cuda_stream)
    pack = {plan.x: x_q, plan.w: w_q, plan.scale: scale.view(1, -1, 1, 1), plan.y: out}
    if plan.bias is not None:
        pack[plan.bias] = bias.view(1, -1, 1, 1)
    plan.graph.execute(pack, plan.workspace, handle=handle)
    return out
