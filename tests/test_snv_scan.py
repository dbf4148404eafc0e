"""Every base at the centre of every window, computed incrementally (serving/snv_scan.py), equals scoring each
substituted window alone with the predictor: logits within 1e-5 of max(1, |logit|), both strands, for every centre of
a stretch and for scattered centres, across runs of N and at the stretch's ends; on the trained test model and on
random weights. A folder without layers.npz is scored window by window after one note."""
from __future__ import annotations

import numpy as np
import pytest

from serving.dna import codes_to_onehot, to_codes
from serving.snv_scan import centred_logits, per_window_logits, snv_logits, supports, windows_fit
from serving.substitutions import layers_for
from tests.test_engine import copy_without, mixed_sequence, random_layers

TOL = 1e-5


def assert_close(got, want):
    assert got.shape == want.shape and got.size > 0
    scaled = np.abs(got.astype(np.float64) - want) / np.maximum(1.0, np.abs(want))
    assert scaled.max() <= TOL, f"largest scaled difference {scaled.max():.2e}"


@pytest.fixture(params=["trained", "random"])
def model(request):
    """The trained test model's predictor or the random-weight one (tests/test_engine.py), with their layers."""
    return request.getfixturevalue("predictor" if request.param == "trained" else "random_predictor")


from tests.test_engine import random_dir, random_predictor  # noqa: E402,F401  (module fixtures reused)


@pytest.mark.parametrize("rc", [False, True])
def test_every_centre_of_a_stretch_equals_each_window_alone(model, rc):
    codes = to_codes(mixed_sequence(1500, seed=3))
    L = model.length
    centres = np.arange(L // 2, len(codes) - (L - L // 2) + 1)
    assert windows_fit(len(codes), centres, L).all()
    layers = layers_for(model)
    assert layers is not None and supports(layers)
    ref, alt = centred_logits(layers, codes, centres, rc)
    want_ref, want_alt = per_window_logits(model, codes, centres, rc)
    assert_close(ref, want_ref)
    assert_close(alt, want_alt)
    known = codes[centres] < 4  # the reference base's column is the reference logit
    assert_close(alt[known, codes[centres][known]], ref[known])


@pytest.mark.parametrize("rc", [False, True])
def test_scattered_centres_and_the_stretch_ends(model, rc):
    rng = np.random.default_rng(7)
    codes = to_codes(mixed_sequence(6000, seed=4))
    L = model.length
    first, last = L // 2, len(codes) - (L - L // 2)
    centres = np.concatenate([[first, last, first + 1], rng.integers(first, last + 1, 300)])  # unsorted, repeats
    ref, alt = snv_logits(model, codes, centres, rc)
    want_ref, want_alt = per_window_logits(model, codes, centres, rc)
    assert_close(ref, want_ref)
    assert_close(alt, want_alt)


def test_a_window_off_the_stretch_is_refused(predictor):
    codes = np.zeros(500, np.uint8)
    L = predictor.length
    assert not windows_fit(500, np.array([L // 2 - 1]), L).any()
    with pytest.raises(ValueError, match="not inside the 500 bp stretch"):
        snv_logits(predictor, codes, np.array([L // 2 - 1]))


def test_passes_split_anywhere_give_the_same_numbers(monkeypatch):
    """Chunking is invisible: one window per pass equals the default passes (random weights, numpy only)."""
    import serving.snv_scan as ss

    layers = random_layers(11)
    codes = np.random.default_rng(1).integers(0, 5, 1200).astype(np.uint8)
    centres = np.arange(100, 1101, 3)
    ref, alt = centred_logits(layers, codes, centres, True, threads=2)
    monkeypatch.setattr(ss, "CHUNK_WINDOWS", 1)
    ref1, alt1 = centred_logits(layers, codes, centres, True, threads=1)
    assert_close(ref1, ref)
    assert_close(alt1, alt)
    forward = centred_logits(layers, codes, centres[:1])[0]  # the first window, also scored whole in numpy
    assert_close(forward, layers.logits(codes_to_onehot(codes[:200])[None]))


def test_a_folder_without_layers_is_scored_window_by_window_after_one_note(random_dir, tmp_path, capsys):
    from serving.artifact import METADATA_FILE
    from serving.predictor import Predictor

    old = copy_without(random_dir, tmp_path / "old", "layers")
    p = Predictor(old, device="cpu")
    codes = to_codes(mixed_sequence(700, seed=9))
    centres = np.arange(100, 601, 50)
    ref, alt = snv_logits(p, codes, centres)
    snv_logits(p, codes, centres)
    assert capsys.readouterr().err.count("has no layers.npz") == 1
    want = centred_logits(layers_for(Predictor(random_dir, device="cpu")), codes, centres)
    assert_close(ref, want[0])
    assert_close(alt, want[1])
    assert (old / METADATA_FILE).exists()
