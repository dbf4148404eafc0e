"""serving.attribution: grad x input and expected gradients from the exported `logits` endpoint, whether they find
the motif, and that a sequence's map depends only on the sequence (not its row, FASTA order or request): in Python,
through `bindcnn saliency --fasta` and through a real server's /saliency."""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def attribution(trained):
    from training.datasets import load_h5
    from serving.attribution import load_logits_fn

    ds = load_h5(trained["data"])
    motif = ds.motif["test"]
    carriers = np.flatnonzero(motif[:, 0] >= 0)
    return load_logits_fn(trained["dir"]), ds.x["test"][carriers], motif[carriers]


def test_saliency_is_gradient_times_input(attribution, trained):
    import keras
    import tensorflow as tf

    from training.model import logit_model
    from serving.attribution import gradients, saliency

    fn, x, _ = attribution
    x = x[:16]
    scores = saliency(fn, x)
    assert scores.shape == x.shape == (16, 200, 4) and scores.dtype == np.float32
    model = logit_model(keras.models.load_model(trained["dir"] / "model.keras"))
    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = model(xt, training=False)
    direct = tape.gradient(z, xt).numpy()
    np.testing.assert_allclose(scores, direct * x, atol=1e-6)
    assert np.all(scores[x == 0] == 0)
    corrected = gradients(fn, x, corrected=True)
    np.testing.assert_allclose(corrected.mean(-1), 0, atol=1e-6)
    np.testing.assert_allclose(corrected, direct - direct.mean(-1, keepdims=True), atol=1e-6)


def test_top_attributions_fall_inside_the_motif(attribution):
    """Measure: among the 19 positions with the highest attribution (the motif's width), the fraction
    inside the recorded motif; chance is 19/200 = 0.095. And the per-sequence AUROC of attribution vs
    motif positions (chance 0.5). Measured for this fixture: ~0.5 / ~0.7 plain, ~0.7 / ~0.83 corrected."""
    from serving.attribution import saliency
    from training.evaluate import motif_auroc

    fn, x, motif = attribution
    for corrected, min_fraction, min_auroc in ((False, 0.3, 0.6), (True, 0.45, 0.75)):
        scores = saliency(fn, x, corrected=corrected)
        top = np.argsort(-scores.sum(-1), axis=1)[:, :19]
        inside = np.mean([((t >= s) & (t < e)).mean() for t, (s, e, _) in zip(top, motif)])
        assert inside > min_fraction, (corrected, inside)
        assert motif_auroc(scores, motif).mean() > min_auroc


def test_logo_and_heatmap_are_pngs(attribution, tmp_path):
    from serving.attribution import saliency
    from serving.plots import plot_heatmap, plot_logo

    fn, x, _ = attribution
    scores = saliency(fn, x[:3])
    for path in (plot_logo(scores[0], tmp_path / "l.png", "t"), plot_heatmap(scores, tmp_path / "h.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_expected_gradients_of_a_linear_model_are_exact():
    """For logit = sum(w * x) the path gradient is w everywhere, so the hypothetical contribution of base b at
    position l is w[l, b] - sum_c w[l, c] r[l, c], averaged over the references r."""
    import tensorflow as tf

    from serving.attribution import EG_REFERENCES, attribute, hypothetical_contributions
    from serving.dna import encode, random_dna
    from serving.shuffle import shuffled_references

    w = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    fn = lambda x: tf.reduce_sum(x * w, axis=(1, 2))[:, None]  # noqa: E731
    x = encode(random_dna(5, 30, seed=1))
    refs = shuffled_references(x, 4, seed=9)
    want = (w[None, None] - (w[None, None] * refs).sum(-1, keepdims=True)).mean(axis=1)
    hyp = hypothetical_contributions(fn, x, references=4, steps=3, seed=9)
    np.testing.assert_allclose(hyp, want, rtol=1e-5, atol=1e-5)
    total = attribute(fn, x, "expected_gradients").sum(axis=(1, 2))  # completeness, exact when linear
    k = EG_REFERENCES
    z, z_ref = fn(x).numpy()[:, 0], fn(shuffled_references(x, k, 0).reshape(-1, 30, 4)).numpy().reshape(5, k)
    np.testing.assert_allclose(total, z - z_ref.mean(axis=1), rtol=1e-4, atol=1e-4)


def test_shuffled_references_keep_dinucleotides_and_ns():
    from serving.dna import decode, encode
    from serving.shuffle import shuffled_references

    x = encode(["ACGTTGCAAACGCGTATATNNGCA" * 3, "GGGGCCCCAAAATTTTN" + "ACGTTACG" * 6 + "CCCCTTT"])
    refs = shuffled_references(x, 5, seed=1)
    assert refs.shape == (2, 5, 72, 4)
    count = lambda s: sorted(s[i:i + 2] for i in range(len(s) - 1))  # noqa: E731
    for seq, rs in zip(decode(x), refs):
        assert all(count(r) == count(seq) for r in decode(rs)) and len(set(decode(rs))) > 1
    np.testing.assert_array_equal(refs, shuffled_references(x, 5, seed=1))


def test_expected_gradients_on_the_model_are_complete_and_find_the_motif(attribution):
    from serving.attribution import attribute, expected_gradients, hypothetical_contributions
    from serving.shuffle import shuffled_references
    from training.evaluate import top_window_hits

    fn, x, motif = attribution
    x, motif = x[:60], motif[:60]
    hyp = hypothetical_contributions(fn, x, references=6, steps=24, seed=0)
    assert hyp.shape == x.shape and hyp.dtype == np.float32 and np.abs(hyp[x == 0]).max() > 0
    z = np.asarray(fn(x))[:, 0]
    z_ref = np.asarray(fn(shuffled_references(x, 6, 0).reshape(-1, 200, 4))).reshape(60, 6).mean(axis=1)
    gap = z - z_ref
    assert np.abs((hyp * x).sum(axis=(1, 2)) - gap).max() < 0.05 * np.abs(gap).max() + 0.05
    _, delta = expected_gradients(fn, x, references=6, steps=24, seed=0)
    np.testing.assert_allclose(delta, np.abs((hyp * x).sum(axis=(1, 2)) - gap), rtol=1e-4, atol=1e-4)
    scores = attribute(fn, x, "expected_gradients")
    assert np.all(scores[x == 0] == 0)
    assert top_window_hits(scores, motif).mean() > 0.6  # chance ~0.2


def test_unknown_method_is_refused(attribution):
    from serving.attribution import attribute

    fn, x, _ = attribution
    with pytest.raises(ValueError, match="unknown attribution method 'ism'.*gradient, corrected, expected_gradients"):
        attribute(fn, x[:1], "ism")


# ------------------------------------------------------------------ a map depends on the sequence, not its row
def peak_close(got, want, tol: float = 1e-6) -> None:
    """Each map within `tol` of its own peak |score| (the issue's measure of agreement)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    for g, w in zip(got, want):
        peak = np.abs(w).max()
        assert peak > 0 and np.abs(g - w).max() <= tol * peak, (np.abs(g - w).max() / peak)


def test_references_are_drawn_from_the_sequence_itself():
    from serving.dna import encode, random_dna
    from serving.shuffle import shuffled_references

    a, b, c = encode(random_dna(3, 120, seed=4))
    first = shuffled_references(np.stack([a, b]), 6, seed=0)
    again = shuffled_references(np.stack([c, b, a]), 6, seed=0)
    np.testing.assert_array_equal(first[0], again[2])  # a's references, row 0 or row 2
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(shuffled_references(a[None], 3, seed=0)[0], first[0, :3])  # the first k of more
    assert not np.array_equal(shuffled_references(a[None], 6, seed=1)[0], first[0])  # another seed, other draws
    twin = shuffled_references(np.stack([a, a]), 6, seed=0)
    np.testing.assert_array_equal(twin[0], twin[1])
    with pytest.raises(ValueError, match="non-negative"):
        shuffled_references(a[None], 2, seed=-1)


def test_a_sequences_map_does_not_depend_on_its_row_or_batch(attribution):
    from serving.attribution import attribution as attribute_all

    fn, x, _ = attribution
    a, b, c = x[0], x[1], x[2]
    for method in ("expected_gradients", "gradient"):
        alone = attribute_all(fn, a[None], method)
        row0 = attribute_all(fn, np.stack([a, b]), method)
        row1 = attribute_all(fn, np.stack([b, a]), method)
        big = attribute_all(fn, np.concatenate([x[3:40], a[None]]), method)  # another chunking of the batch
        for other, row in ((row0, 0), (row1, 1), (big, 37)):
            peak_close(other.scores[row][None], alone.scores)
        if method == "expected_gradients":
            assert row0.convergence_delta.shape == (2,)
            np.testing.assert_allclose([row1.convergence_delta[1], big.convergence_delta[37]],
                                       alone.convergence_delta[0], rtol=1e-4, atol=1e-6)
            peak_close(row0.scores[1][None], row1.scores[0][None])
        else:
            assert alone.convergence_delta is None


def test_cli_fasta_order_does_not_change_the_maps(attribution, trained, tmp_path):
    from serving.attribution import attribution as attribute_all
    from serving.dna import decode
    from serving.fasta import write_fasta
    from training.cli import main

    fn, x, _ = attribution
    ids = ["a", "b", "c", "d"]
    seqs = dict(zip(ids, decode(x[:4])))
    maps = {}
    for order in (ids, ids[::-1]):
        write_fasta([(i, seqs[i]) for i in order], tmp_path / "in.fa")
        out = tmp_path / "".join(order)
        assert main(["saliency", "--model", str(trained["dir"]), "--fasta", str(tmp_path / "in.fa"),
                     "--method", "expected_gradients", "--max-logos", "0", "--out", str(out)]) == 0
        assert (out / "ids.txt").read_text().split() == order
        rows = [r.split("\t") for r in (out / "records.tsv").read_text().splitlines()]
        assert rows[0][-1] == "convergence_delta"
        maps[tuple(order)] = {i: (s, float(r[-1])) for i, s, r in zip(order, np.load(out / "scores.npy"), rows[1:])}
    want = attribute_all(fn, x[:4], "expected_gradients")
    for k, i in enumerate(ids):
        for got in maps.values():
            peak_close(got[i][0][None], want.scores[k][None])
            assert got[i][1] == pytest.approx(want.convergence_delta[k], rel=1e-4, abs=1e-6)


def test_saliency_of_a_b_and_c_b_a_gives_the_same_map_for_a(server, attribution):
    """Through a real server: a's map is the same whichever request and row it comes in, and equals Python's."""
    import httpx

    from serving.attribution import attribution as attribute_all
    from serving.dna import decode

    fn, x, _ = attribution
    a, b, c = decode(x[:3])
    first = httpx.post(f"{server.url}/saliency", json={"sequences": [a, b]}, timeout=300)
    second = httpx.post(f"{server.url}/saliency", json={"sequences": [c, b, a]}, timeout=300)
    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    one, two = first.json(), second.json()
    assert one["method"] == two["method"] == "expected_gradients"
    peak_close(np.asarray(two["scores"])[2][None], np.asarray(one["scores"])[0][None])
    peak_close(np.asarray(two["scores"])[1][None], np.asarray(one["scores"])[1][None])
    want = attribute_all(fn, x[:3], "expected_gradients")
    peak_close(np.asarray(one["scores"]), want.scores[:2])
    assert len(one["convergence_delta"]) == 2 and len(two["convergence_delta"]) == 3
    np.testing.assert_allclose(two["convergence_delta"][2], one["convergence_delta"][0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(one["convergence_delta"], want.convergence_delta[:2], rtol=1e-4, atol=1e-6)
    gradient = httpx.post(f"{server.url}/saliency", json={"sequences": [a], "method": "gradient"}, timeout=60).json()
    assert gradient["method"] == "gradient" and gradient["convergence_delta"] is None
