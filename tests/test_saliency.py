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
