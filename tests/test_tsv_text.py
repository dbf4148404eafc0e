"""The score command's TSV writer: numbers exactly as Python's '%.7g' writes them, rows as Python would join them."""
import numpy as np

from serving.scoring.tsv_text import g_text, tsv_rows


def python_rows(ids, *columns):
    return "".join("\t".join([i] + ["NA" if v != v else "%.7g" % v for v in vals]) + "\n"
                   for i, *vals in zip(ids, *(np.asarray(c, np.float32).tolist() for c in columns)))


def awkward_values() -> np.ndarray:
    """Every float32 bit pattern class: random bits (NaN, inf, denormals), probabilities, logits, the edges of the
    numpy path (1e-5, 1e6), values that round up to the next power of ten, exact rounding ties."""
    rng = np.random.default_rng(7)
    edges = np.float32([0.0, -0.0, 1e-5, -1e-5, 9.99999e-6, 1e6, 999999.94, 999999.96, 9.9999996, 99999.996,
                        0.12890625, 0.5, 1.0, -1.0, 123456.7, 0.0001, 1e-4 * (1 - 2**-23), 0.00012345678, 1e-30,
                        3.4e38, np.nan, np.inf, -np.inf, 1.5e-5, 2.0**-17, 0.1, 0.2, 0.3])
    nearby = np.nextafter(np.repeat(edges, 2), np.tile(np.float32([-np.inf, np.inf]), len(edges)))
    return np.concatenate([
        edges, nearby.astype(np.float32),
        rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        rng.random(100_000).astype(np.float32), (rng.random(50_000) ** 6).astype(np.float32),
        (rng.standard_normal(100_000) * 6).astype(np.float32), rng.uniform(-2e6, 2e6, 50_000).astype(np.float32),
        (rng.integers(1, 10**7, 50_000) / np.float64(10) ** rng.integers(1, 12, 50_000)).astype(np.float32),
    ])


def test_g_text_is_python_percent_g_for_every_value_class():
    values = awkward_values()
    chars, sizes = g_text(values)
    mine = [chars[i, :sizes[i]].tobytes().decode() for i in range(len(values))]
    python = ["NA" if v != v else "%.7g" % v for v in values.tolist()]
    wrong = [(values[i], m, p) for i, (m, p) in enumerate(zip(mine, python)) if m != p]
    assert not wrong, wrong[:10]


def test_rows_equal_python_rows_with_awkward_ids_and_na():
    values = awkward_values()[:60_000]
    ids = [f"r{i}" for i in range(len(values))]
    ids[3], ids[9], ids[11] = "séquence_ünïcode", "chr1:100-300(+)", "x" * 100
    logit = values[::-1].copy()
    logit[5] = np.nan
    assert tsv_rows(ids, values, logit) == python_rows(ids, values, logit)


def test_rows_fall_back_to_python_for_long_or_broken_ids():
    values = np.float32([0.25, 1e-7, np.nan])
    for ids in (["a" * 1000, "b", "c"], ["a", "b\nc", "d"]):
        assert tsv_rows(ids, values) == python_rows(ids, values)
    assert tsv_rows([], np.zeros(0, np.float32)) == ""
