"""training.saliency: grad x input from the exported `logits` endpoint, and whether it finds the motif."""
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

    from serving.attribution import attribute, hypothetical_contributions
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
    z, z_ref = fn(x).numpy()[:, 0], fn(shuffled_references(x, 10, 0).reshape(-1, 30, 4)).numpy().reshape(5, 10)
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
    from serving.attribution import attribute, hypothetical_contributions
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
    scores = attribute(fn, x, "expected_gradients")
    assert np.all(scores[x == 0] == 0)
    assert top_window_hits(scores, motif).mean() > 0.6  # chance ~0.2


def test_unknown_method_is_refused(attribution):
    from serving.attribution import attribute

    fn, x, _ = attribution
    with pytest.raises(ValueError, match="unknown attribution method 'ism'.*gradient, corrected, expected_gradients"):
        attribute(fn, x[:1], "ism")
