"""The scan graph (scan.onnx): every window of a long sequence scored with the convolution computed once per base,
built at export from the same weights as model.onnx (serving.layers.Layers) and checked against it window by window.

A window's score depends only on its own L bases, exactly as if it were scored alone:
- the 'same' convolution at a window's interior positions (those whose kernel stays inside the window) equals the
  convolution of the long sequence there: computed once, as a 'valid' Conv over the chunk, then ReLU;
- a pooled bin made of interior positions only is a running max (MaxPool of stride 1) read at the bin's start;
- the first (K-1)//2 and last K-1-(K-1)//2 positions of a window see the window's zero padding (truncated kernels):
  each edge's values are a linear map of the window's first / last K - 1 bases (one Gemm per edge), then max-reduced
  into the bins holding them (ReLU commutes with max, so it is applied once, to the bin);
- the dense layer over the T bins is applied to the gathered bins; then the logit and its sigmoid.
Inputs `dna` (n, 4) float32 one-hot and `starts` (W,) int64 (window starts, 0 <= s <= n - L, any order or stride);
outputs `logit` and `prob` (W,) float32. Cost per window at stride 1: ~2 x (K-1)*4*(K-1)/2*F + T*F*D multiply-adds
(about 45k for the notebook CNN, vs 377k for a window scored alone).
"""
from __future__ import annotations

import numpy as np

from serving.engine import SCAN_INPUTS, SCAN_OUTPUTS
from serving.layers import Layers

DNA, STARTS = SCAN_INPUTS
LOGIT, PROB = SCAN_OUTPUTS


def edge_maps(layers: Layers) -> tuple[np.ndarray, np.ndarray]:
    """The truncated kernels as matrices: left ((K-1)*4, left*F) maps a window's first K - 1 bases (flattened
    position-major, (K-1, 4)) to the pre-bias convolution at its first `left` positions (position-major, (left, F));
    right ((K-1)*4, right*F) maps its last K - 1 bases to its last `right` positions."""
    k, c, f = layers.kernel.shape
    left, right, length = layers.pad_left, k - 1 - layers.pad_left, layers.length
    maps = []
    for first_base, positions in ((0, range(left)), (length - k + 1, range(length - right, length))):
        m = np.zeros((k - 1, c, len(positions), f), np.float32)
        for i, r in enumerate(positions):
            for q in range(k - 1):  # base first_base + q of the window; output r reads it with tap
                tap = first_base + q - r + left
                if 0 <= tap < k and 0 <= first_base + q < length:
                    m[q, :, i, :] = layers.kernel[tap]
        maps.append(m.reshape((k - 1) * c, len(positions) * f))
    return maps[0], maps[1]


def bin_plan(layers: Layers) -> list[dict]:
    """For each pooled bin: its interior positions [a, b) (relative to the window; a == b: none) and the left-edge
    and right-edge positions it holds, as index ranges into the edge outputs."""
    k, p, length = layers.width, layers.pool, layers.length
    left, right = layers.pad_left, k - 1 - layers.pad_left
    plan = []
    for j in range(layers.bins):
        lo, hi = j * p, j * p + p
        a, b = max(lo, left), min(hi, length - right)
        plan.append({"interior": (a, max(a, b)),
                     "left": (lo, min(hi, left)) if lo < left else None,
                     "right": (max(lo, length - right) - (length - right), hi - (length - right))
                     if hi > length - right else None})
    return plan


class _Graph:
    """Nodes and initializers being collected; every node is named after its one output."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits = [], []

    def const(self, name: str, value) -> str:
        self.inits.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def ints(self, name: str, values) -> str:
        return self.const(name, np.asarray(values, np.int64))

    def op(self, kind: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(self.helper.make_node(kind, inputs, [output], name=output, **attrs))
        return output

    def has(self, name: str) -> bool:
        return any(n.name == name for n in self.nodes)


def build(layers: Layers, opset: int = 17):
    """onnx.ModelProto of the scan graph (module docstring) for these weights."""
    import onnx
    from onnx import TensorProto, helper

    layers.check()
    k, c, f = layers.kernel.shape
    left, length = layers.pad_left, layers.length
    g = _Graph()
    # the convolution once over the chunk, 'valid': output u is the window-interior value at base u + left
    x = g.op("Reshape", [g.op("Transpose", [DNA], "dna_t", perm=[1, 0]), g.ints("shape_1c1n", [1, c, 1, -1])],
             "dna_nchw")
    conv = g.op("Conv", [x, g.const("conv_w", layers.kernel.transpose(2, 1, 0)[:, :, None, :]),
                         g.const("conv_b", layers.bias)], "conv", kernel_shape=[1, k])
    h = g.op("Relu", [conv], "conv_relu")
    starts = g.op("Unsqueeze", [STARTS, g.ints("axis1", [1])], "starts_col")  # (W, 1)

    def at_starts(offsets, tag: str) -> str:
        """(W, len(offsets)) int64: every window start plus each offset."""
        return g.op("Add", [starts, g.ints(f"off_{tag}", [offsets])], f"idx_{tag}")

    def running_max(width: int) -> str:
        """(positions, F): the max of ReLU'd convolution over `width` positions from each position (stride 1)."""
        name = f"max{width}"
        if not g.has(name):
            pooled = h if width == 1 else g.op("MaxPool", [h], f"pool{width}", kernel_shape=[1, width])
            flat = g.op("Reshape", [pooled, g.ints(f"shape_f{width}", [f, -1])], f"flat{width}")
            g.op("Transpose", [flat], name, perm=[1, 0])
        return name

    def gather_bins(width: int, firsts: list[int], tag: str) -> str:
        """(W, len(firsts) * F): the running maxima of `width` that begin at each window's positions `firsts`."""
        got = g.op("Gather", [running_max(width), at_starts(np.array(firsts) - left, tag)], f"bins_{tag}", axis=0)
        return g.op("Reshape", [got, g.ints(f"shape_{tag}", [-1, len(firsts) * f])], f"binsflat_{tag}")

    edges = {}  # side -> (W, positions, F) before ReLU: the window's edge positions with its own zero padding
    for side, matrix, first_base in zip(("left", "right"), edge_maps(layers), (0, length - k + 1)):
        n_out = matrix.shape[1] // f
        if n_out:
            patch = g.op("Gather", [DNA, at_starts(np.arange(first_base, first_base + k - 1), f"patch_{side}")],
                         f"patch_{side}", axis=0)  # (W, K - 1, 4): the bases the edge reads
            flat = g.op("Reshape", [patch, g.ints(f"shape_p{side}", [-1, (k - 1) * c])], f"patchflat_{side}")
            out = g.op("Gemm", [flat, g.const(f"edge_w_{side}", matrix),
                                g.const(f"edge_b_{side}", np.tile(layers.bias, n_out))], f"edge_{side}")
            edges[side] = g.op("Reshape", [out, g.ints(f"shape_e{side}", [-1, n_out, f])], f"edges_{side}")

    def edge_max(j: int, side: str) -> str:
        """(W, F): the max over the edge positions of `side` that bin j holds (before ReLU)."""
        lo, hi = plan[j][side]
        part = edges[side]
        if (lo, hi) != (0, left if side == "left" else k - 1 - left):  # not all of them
            part = g.op("Slice", [part, g.ints(f"lo{j}{side}", [lo]), g.ints(f"hi{j}{side}", [hi]),
                                  g.ints(f"ax{j}{side}", [1])], f"slice{j}{side}")
        return g.op("ReduceMax", [part], f"edgemax{j}{side}", axes=[1], keepdims=0)

    plan = bin_plan(layers)
    pieces: list[str] = []  # (W, n * F) each, in bin order: Keras' flatten order once concatenated
    run: list[int] = []  # consecutive interior-only bins of one width, gathered together
    for j, spec in enumerate(plan + [None]):
        a, b = spec["interior"] if spec else (0, 0)
        width = plan[run[0]]["interior"][1] - plan[run[0]]["interior"][0] if run else None
        if run and (spec is None or spec["left"] or spec["right"] or b - a != width):
            pieces.append(gather_bins(width, [plan[i]["interior"][0] for i in run], f"run{run[0]}"))
            run = []
        if spec is None:
            break
        sides = [side for side in ("left", "right") if spec[side] and side in edges]
        if not sides:
            run.append(j)
            continue
        parts = [edge_max(j, side) for side in sides]
        if b > a:  # the interior max is ReLU'd (>= 0), so the max with the edges is already ReLU'd
            pieces.append(g.op("Max", parts + [gather_bins(b - a, [a], f"in{j}")], f"bin{j}"))
        else:
            pieces.append(g.op("Relu", [g.op("Max", parts, f"edges{j}") if len(parts) > 1 else parts[0]], f"bin{j}"))
    pooled = g.op("Concat", pieces, "pooled", axis=1) if len(pieces) > 1 else pieces[0]  # (W, T * F)
    hidden = g.op("Relu", [g.op("Gemm", [pooled, g.const("dense_w", layers.dense_w),
                                         g.const("dense_b", layers.dense_b)], "dense")], "dense_relu")
    z = g.op("Gemm", [hidden, g.const("logit_w", layers.logit_w), g.const("logit_b", layers.logit_b)], "logit_col")
    g.op("Reshape", [z, g.ints("shape_w", [-1])], LOGIT)
    g.op("Sigmoid", [LOGIT], PROB)
    graph = helper.make_graph(
        g.nodes, "bindcnn_scan",
        [helper.make_tensor_value_info(DNA, TensorProto.FLOAT, ["bases", c]),
         helper.make_tensor_value_info(STARTS, TensorProto.INT64, ["windows"])],
        [helper.make_tensor_value_info(LOGIT, TensorProto.FLOAT, ["windows"]),
         helper.make_tensor_value_info(PROB, TensorProto.FLOAT, ["windows"])],
        g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="bindcnn")
    proto.ir_version = min(proto.ir_version, 8)
    proto.doc_string = (f"bindcnn scan graph: dna (bases, 4) one-hot ACGT + starts (windows,) int64 -> logit, prob "
                        f"(windows,) of each {length}-bp window, each exactly as scored alone")
    onnx.checker.check_model(proto)
    return proto
