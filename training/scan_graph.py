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
    """Nodes and initializers being collected (names are unique by prefix)."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits = [], []

    def const(self, name: str, value) -> str:
        self.inits.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(self.helper.make_node(kind, inputs, [output], name=output, **attrs))
        return output


def build(layers: Layers, opset: int = 17):
    """onnx.ModelProto of the scan graph (module docstring) for these weights."""
    import onnx
    from onnx import TensorProto, helper

    layers.check()
    k, c, f = layers.kernel.shape
    left, length = layers.pad_left, layers.length
    g = _Graph()
    # the convolution once over the chunk: 'valid', so output u is the window-interior value at base u + left
    x4 = g.op("Reshape", [g.op("Transpose", [DNA], "dna_t", perm=[1, 0]), g.const("shape_1c1n", np.array(
        [1, c, 1, -1], np.int64))], "dna_nchw")
    conv_w = layers.kernel.transpose(2, 1, 0)[:, :, None, :]  # (F, C, 1, K)
    h = g.op("Relu", [g.op("Conv", [x4, g.const("conv_w", conv_w), g.const("conv_b", layers.bias)], "conv",
                           kernel_shape=[1, k])], "conv_relu")
    starts_col = g.op("Unsqueeze", [STARTS, g.const("axis1", np.array([1], np.int64))], "starts_col")  # (W, 1)

    def running_max(width: int) -> str:
        name = f"max{width}"
        if not any(n.name == name for n in g.nodes):
            pooled = h if width == 1 else g.op("MaxPool", [h], f"pool{width}", kernel_shape=[1, width])
            flat = g.op("Reshape", [pooled, g.const(f"shape_f{width}", np.array([f, -1], np.int64))], f"flat{width}")
            g.op("Transpose", [flat], name, perm=[1, 0])  # (positions, F)
        return name

    def gather_bins(width: int, starts: list[int], tag: str) -> str:
        """(W, len(starts) * F): running maxes of `width` read at window start + each relative start."""
        idx = g.op("Add", [starts_col, g.const(f"off_{tag}", np.array([starts], np.int64) - left)], f"idx_{tag}")
        got = g.op("Gather", [running_max(width), idx], f"bins_{tag}", axis=0)  # (W, n, F)
        return g.op("Reshape", [got, g.const(f"shape_{tag}", np.array([-1, len(starts) * f], np.int64))],
                    f"binsflat_{tag}")

    edges, edge_count = {}, {}
    for side, (matrix, first_base) in zip(("left", "right"), zip(edge_maps(layers), (0, length - k + 1))):
        n_out = edge_count[side] = matrix.shape[1] // f
        if n_out == 0:
            continue
        idx = g.op("Add", [starts_col, g.const(f"patch_{side}", np.arange(first_base, first_base + k - 1,
                                                                           dtype=np.int64)[None])], f"pidx_{side}")
        patch = g.op("Reshape", [g.op("Gather", [DNA, idx], f"patch_{side}_x", axis=0),
                                 g.const(f"shape_p{side}", np.array([-1, (k - 1) * c], np.int64))], f"patchflat_{side}")
        out = g.op("Gemm", [patch, g.const(f"edge_w_{side}", matrix), g.const(f"edge_b_{side}",
                                                                            np.tile(layers.bias, n_out))], f"edge_{side}")
        edges[side] = g.op("Reshape", [out, g.const(f"shape_e{side}", np.array([-1, n_out, f], np.int64))],
                           f"edges_{side}")  # (W, positions, F), before ReLU

    pieces: list[str] = []
    run: list[int] = []  # consecutive interior-only bins of one width, gathered together

    def flush_run():
        if run:
            a, b = plan[run[0]]["interior"]
            pieces.append(gather_bins(b - a, [plan[j]["interior"][0] for j in run], f"run{run[0]}"))
            run.clear()

    plan = bin_plan(layers)
    for j, spec in enumerate(plan):
        a, b = spec["interior"]
        if spec["left"] is None and spec["right"] is None:
            if run and plan[run[0]]["interior"][1] - plan[run[0]]["interior"][0] != b - a:
                flush_run()
            run.append(j)
            continue
        flush_run()
        parts = []
        for side in ("left", "right"):
            if spec[side] is not None and side in edges:
                lo, hi = spec[side]
                whole = (lo, hi) == (0, edge_count[side])
                part = edges[side] if whole else g.op("Slice", [edges[side], g.const(f"lo{j}{side}", np.array([lo], np.int64)),
                                      g.const(f"hi{j}{side}", np.array([hi], np.int64)), g.const(
                                          f"ax{j}{side}", np.array([1], np.int64))], f"slice{j}{side}")
                parts.append(g.op("ReduceMax", [part], f"edgemax{j}{side}", axes=[1], keepdims=0))
        if b > a:  # ReLU'd interior max >= 0, so max(interior, edges) is already ReLU'd
            parts.append(gather_bins(b - a, [a], f"in{j}"))
            pieces.append(g.op("Max", parts, f"bin{j}"))
        else:
            pieces.append(g.op("Relu", [g.op("Max", parts, f"edges{j}") if len(parts) > 1 else parts[0]],
                               f"bin{j}"))
    flush_run()
    pooled = g.op("Concat", pieces, "pooled", axis=1) if len(pieces) > 1 else pieces[0]  # (W, T * F) Keras order
    hidden = g.op("Relu", [g.op("Gemm", [pooled, g.const("dense_w", layers.dense_w),
                                         g.const("dense_b", layers.dense_b)], "dense")], "dense_relu")
    z = g.op("Gemm", [hidden, g.const("logit_w", layers.logit_w), g.const("logit_b", layers.logit_b)], "logit_col")
    g.op("Reshape", [z, g.const("shape_w", np.array([-1], np.int64))], LOGIT)
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
