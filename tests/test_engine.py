"""The shared-computation engines are exact: every window the scan graph scores (serving/engine.py) and every mutant
the incremental substitutions compute (serving/substitutions.py) equals scoring that window alone with the predictor,
probabilities within 1e-5 and logits within 1e-5 of max(1, |logit|): at strides 1, 7 and 50, at sequence ends, across
runs of N and soft-masked bases, with both strands averaged; on the trained test model and on random weights. A model
folder without the engines' files still scans and mutates (window by window) after a one-line note."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from serving.artifact import ArtifactError, METADATA_FILE, ONNX_FILE, probe_inputs, write_metadata
from serving.dna import random_dna
from serving.engine import SCAN_FILE, ScanEngine, engine_for
from serving.layers import LAYERS_FILE, Layers
from serving.scoring import mutagenesis as mu
from serving.scoring.scan import scan_sequence

TOL = 1e-5


class PerWindow:
    """A predictor seen without its model folder: scoring then sends every window (every mutant) to it whole."""

    def __init__(self, predictor):
        self.predictor, self.length, self.alphabet = predictor, predictor.length, predictor.alphabet
        self.prefers_strings = False

    def predict_onehot(self, x, reverse_complement_average=False):
        return self.predictor.predict_onehot(x, reverse_complement_average)


def assert_same(prob, logit, want_prob, want_logit):
    assert len(logit) == len(want_logit) > 0
    assert np.abs(np.asarray(prob, np.float64) - want_prob).max() <= TOL
    scaled = np.abs(np.asarray(logit, np.float64) - want_logit) / np.maximum(1.0, np.abs(want_logit))
    assert scaled.max() <= TOL


def random_layers(seed: int, length: int = 200) -> Layers:
    """The notebook CNN's shapes with random weights: logits of several units, both signs (about +-5). Much larger
    weights make float32 rounding alone (in model.onnx as in the scan graph) exceed the tolerance for logits near 0."""
    rng = np.random.default_rng(seed)

    def w(*shape, scale=1.0):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    return Layers(kernel=w(19, 4, 24, scale=0.2), bias=w(24, scale=0.1), pool=25, dense_w=w(192, 64, scale=0.08),
                  dense_b=w(64, scale=0.1), logit_w=w(64, 1, scale=0.3), logit_b=w(1, scale=0.5), length=length)


def write_random_model(folder, layers: Layers):
    """A model folder from numpy weights, without TensorFlow: model.onnx, scan.onnx and layers.npz written as export
    writes them, the fingerprint taken from model.onnx (there is no SavedModel to take it from)."""
    import onnxruntime as ort

    from training import onnx_graph, scan_graph

    folder.mkdir(parents=True)
    (folder / ONNX_FILE).write_bytes(onnx_graph.build_from_layers(layers).SerializeToString())
    (folder / SCAN_FILE).write_bytes(scan_graph.build(layers).SerializeToString())
    layers.save(folder / LAYERS_FILE)
    session = ort.InferenceSession(str(folder / ONNX_FILE), providers=["CPUExecutionProvider"])
    probe = session.run(["logit"], {"dna": probe_inputs(layers.length)})[0].reshape(-1)
    L = layers.length
    write_metadata(folder, {
        "name": "random", "version": "1", "sequence_length": L, "alphabet": "ACGT",
        "input_layout": f"(batch, {L}, 4) float32 one-hot", "input_name": "dna", "output_names": ["prob", "logit"],
        "fingerprint": {"probe": "model.onnx", "logit": [float(v) for v in probe]},
        "scan_graph": {"file": SCAN_FILE}, "layers": {"file": LAYERS_FILE}})
    return folder


def copy_without(folder, dest, *keys: str):
    """A copy of a model folder without the files its metadata lists under `keys` (e.g. "layers", "scan_graph"),
    metadata rewritten (checksums included): what a folder exported before those files existed looks like."""
    dest = shutil.copytree(folder, dest)
    meta = json.loads((dest / METADATA_FILE).read_text())
    for key in keys:
        (dest / meta.pop(key)["file"]).unlink()
    meta.pop("files", None)
    write_metadata(dest, meta)
    return dest


@pytest.fixture(scope="module")
def random_dir(tmp_path_factory):
    return write_random_model(tmp_path_factory.mktemp("engine") / "random", random_layers(5))


@pytest.fixture(scope="module")
def random_predictor(random_dir):
    from serving.predictor import Predictor

    return Predictor(random_dir, device="cpu")


@pytest.fixture(params=["trained", "random"])
def model(request):
    """The trained test model's predictor or the random-weight one (each with its scan graph and layers)."""
    return request.getfixturevalue("predictor" if request.param == "trained" else "random_predictor")


def mixed_sequence(n: int, seed: int) -> str:
    """Random DNA of n bases with a run of N inside, N at both ends and a soft-masked (lowercase) stretch."""
    s = list(random_dna(1, n, seed)[0])
    run = min(150, n // 10)
    s[n // 3:n // 3 + run] = ["N"] * run
    s[:3], s[-2:] = ["N"] * 3, ["n"] * 2
    s[n // 2:n // 2 + 400] = [c.lower() for c in s[n // 2:n // 2 + 400]]
    return "".join(s)


@pytest.mark.parametrize("stride", [1, 7, 50])
@pytest.mark.parametrize("rc", [False, True])
def test_every_window_equals_scoring_it_alone(model, stride, rc):
    seq = mixed_sequence(3217, seed=stride)
    assert engine_for(model) is not None
    got = scan_sequence(model, seq, stride=stride, rc=rc)
    want = scan_sequence(PerWindow(model), seq, stride=stride, rc=rc)
    np.testing.assert_array_equal(got.starts, want.starts)
    assert got.starts[-1] + stride + model.length > len(seq)  # the last window that fits is there
    assert_same(got.probability, got.logit, want.probability, want.logit)


@pytest.mark.parametrize("n", [200, 201, 399, 1000])
def test_sequence_ends_and_short_runs(random_predictor, n):
    """Runs of a few bases overlapping by L - 1 (many per sequence) give the same windows, and as many."""
    engine = ScanEngine.from_predictor(random_predictor, run_bases=random_predictor.length + 13)
    seq = mixed_sequence(n, seed=n)
    from serving.dna import to_codes

    codes = to_codes(seq)
    seen = []
    for stride, rc in ((1, False), (3, True), (50, False)):
        prob, logit = engine.scan_codes(codes, stride, rc, on_windows=seen.append)
        want = scan_sequence(PerWindow(random_predictor), seq, stride=stride, rc=rc)
        assert_same(prob, logit, want.probability, want.logit)
        assert sum(seen) == len(logit) == (n - 200) // stride + 1
        seen.clear()


def test_genome_tiles_go_through_the_engine(predictor, tmp_path):
    from serving.genome import Genome
    from serving.scoring import genome_scan as gs
    from tests.genome_files import write_genome

    seqs = {"chr1": mixed_sequence(5000, 1), "chr2": mixed_sequence(900, 2)}
    genome = Genome(write_genome(tmp_path, seqs)[0], quiet=True)
    spans = gs.whole_chromosomes(genome)
    for stride in (1, 13):
        got = list(gs.scan_genome(predictor, genome, spans, stride, tile_bp=1500))
        want = list(gs.scan_genome(PerWindow(predictor), genome, spans, stride, tile_bp=1500))
        assert len(got) == len(want) > 2
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.starts, w.starts)
            assert_same(g.probability, g.logit, w.probability, w.logit)


@pytest.mark.parametrize("rc", [False, True])
def test_incremental_mutagenesis_equals_scoring_each_mutant(model, rc):
    for seed in (1, 2):
        seq = mixed_sequence(200, seed)[::-1] if seed == 2 else random_dna(1, 200, seed)[0]
        delta, ref = mu.saturation_mutagenesis(model, seq, rc)
        want_delta, want_ref = mu.saturation_mutagenesis(PerWindow(model), seq, rc)
        assert delta.shape == (200, 4) and delta.dtype == np.float32
        assert abs(ref - want_ref) <= TOL * max(1.0, abs(want_ref))
        want = want_ref + want_delta.astype(np.float64)
        scaled = np.abs(ref + delta.astype(np.float64) - want) / np.maximum(1.0, np.abs(want))
        assert scaled.max() <= TOL
        assert np.abs(delta).max() > 1e-3  # substitutions do change the logit
        known = [i for i, c in enumerate(seq.upper()) if c != "N"]
        assert (delta[known, ["ACGT".index(seq[i].upper()) for i in known]] == 0).all()


def test_old_model_folder_scans_window_by_window_after_one_note(random_dir, tmp_path, capsys):
    from serving.predictor import Predictor

    old = copy_without(random_dir, tmp_path / "old", "scan_graph", "layers")
    predictor = Predictor(old, device="cpu")
    capsys.readouterr()
    seq = mixed_sequence(700, 3)
    got = [scan_sequence(predictor, seq, stride=5) for _ in range(2)]
    err = capsys.readouterr().err
    assert err.count("has no scan graph") == 1 and "bindcnn export --model" in err
    want = scan_sequence(PerWindow(predictor), seq, stride=5)
    for g in got:
        assert_same(g.probability, g.logit, want.probability, want.logit)
    delta, ref = mu.saturation_mutagenesis(predictor, seq[:200])
    want_delta, want_ref = mu.saturation_mutagenesis(PerWindow(predictor), seq[:200])
    np.testing.assert_allclose(delta, want_delta, atol=TOL)


def test_a_scan_graph_from_other_weights_is_refused(random_dir, tmp_path):
    from serving.predictor import Predictor
    from training import scan_graph

    other = shutil.copytree(random_dir, tmp_path / "other")
    (other / SCAN_FILE).write_bytes(scan_graph.build(random_layers(6)).SerializeToString())
    meta = json.loads((other / METADATA_FILE).read_text())
    write_metadata(other, {k: v for k, v in meta.items() if k != "files"})  # checksums made to match
    with pytest.raises(ArtifactError, match="scan graph"):
        engine_for(Predictor(other, device="cpu"))


def test_export_checks_and_describes_the_engine_files(trained):
    meta = trained["meta"]
    for key, name in (("scan_graph", SCAN_FILE), ("layers", LAYERS_FILE)):
        assert meta[key]["file"] == name and name in meta["files"]
        parity = meta[key]["parity"]
        assert parity["n"] > 1000 and parity["max_scaled_logit_diff"] <= TOL and parity["max_abs_prob_diff"] <= TOL
    assert set(meta["scan_graph"]["inputs"]) == {"dna", "starts"} and "onnx_variants" not in meta


def test_bindcnn_export_adds_the_engine_files_to_an_old_folder(trained, tmp_path):
    from serving.predictor import Predictor
    from training.cli import main

    old = shutil.copytree(trained["dir"], tmp_path / "old")
    meta = json.loads((old / METADATA_FILE).read_text())
    for key in ("scan_graph", "layers"):
        (old / meta.pop(key)["file"]).unlink()
    meta.pop("files")
    write_metadata(old, meta)
    assert engine_for(Predictor(old, device="cpu")) is None
    assert main(["export", "--model", str(old), "--no-register"]) == 0
    predictor = Predictor(old, device="cpu")
    assert engine_for(predictor) is not None and (old / LAYERS_FILE).is_file()
    seq = mixed_sequence(900, 4)
    got, want = scan_sequence(predictor, seq), scan_sequence(PerWindow(predictor), seq)
    assert_same(got.probability, got.logit, want.probability, want.logit)


def test_a_mismatch_fails_the_export():
    from training.export import ParityError, agreement

    z = np.linspace(-20, 20, 101)
    assert agreement(z, z + 1e-6, TOL, "x")["max_scaled_logit_diff"] < TOL
    with pytest.raises(ParityError, match="the scan graph"):
        agreement(z, np.where(z == 0, 1e-3, z), TOL, "the scan graph")


def test_mutagenesis_command_scores_every_record(trained, predictor, tmp_path, capsys):
    from serving.cli import EXIT_REJECTS, main
    from serving.fasta import write_fasta

    seqs = random_dna(5, 200, seed=9)
    records = [(f"r{i}", s) for i, s in enumerate(seqs)] + [("short", seqs[0][:150])]
    records[2] = ("masked", seqs[2][:60].lower() + "N" * 10 + seqs[2][70:])
    write_fasta(records, tmp_path / "in.fa")
    out, npy = tmp_path / "ism.tsv", tmp_path / "ism.npy"
    code = main(["mutagenesis", "--model", str(trained["dir"]), "--device", "cpu", "--fasta", str(tmp_path / "in.fa"),
                 "-o", str(out), "--npy", str(npy)])
    assert code == EXIT_REJECTS and "short: length 150" in capsys.readouterr().err
    lines = out.read_text().splitlines()
    assert lines[0] == "id\tposition\tref\tdelta_logit_A\tdelta_logit_C\tdelta_logit_G\tdelta_logit_T"
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 5 * 200 and [r[0] for r in rows[::200]] == ["r0", "r1", "masked", "r3", "r4"]
    deltas = np.load(npy)
    assert deltas.shape == (5, 200, 4)
    for k, (rid, seq) in enumerate(records[:5]):
        want, _ = mu.saturation_mutagenesis(PerWindow(predictor), seq)
        np.testing.assert_allclose(deltas[k], want, atol=2 * TOL)
        table = np.array([[float(v) for v in r[3:]] for r in rows[200 * k:200 * (k + 1)]])
        np.testing.assert_allclose(table, deltas[k], rtol=1e-5, atol=1e-5)
        assert "".join(r[2] for r in rows[200 * k:200 * (k + 1)]) == seq.upper()
