"""Allele-specific attribution (serving/scoring/variant_explain.py): `bindcnn variants --explain N` writes, for the N
variants with the largest |delta_logit|, the ref, alt and alt - ref attribution (PNG and .npy) and an index; the
service's /variants with explain: true answers the same maps; the top-N choice and the file names."""
from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from serving.cli import EXIT_OK, EXIT_USAGE, main
from serving.scoring import variant_explain as ve
from tests.test_pvalues import ctcf_genome, read_rows

L = 200


def test_top_effects_keeps_the_largest_absolute_deltas_in_order():
    top = ve.TopEffects(3)
    rows = [{"id": str(i), "delta_logit": d} for i, d in enumerate([0.1, -5.0, None, 2.0, float("nan"), 3.0, -2.0])]
    top.add(list(range(4)), rows[:4])
    top.add(list(range(4, 7)), rows[4:])
    assert [row["id"] for _, row in top.chosen()] == ["1", "5", "3"]  # 2.0 before -2.0: the earlier one wins a tie
    assert ve.TopEffects(5).chosen() == []


def test_allele_maps_and_names():
    scores = np.random.default_rng(0).normal(size=(4, L, 4)).astype(np.float32)
    maps = ve.allele_maps(scores)
    assert maps.shape == (2, 3, L, 4)
    np.testing.assert_array_equal(maps[1, 2], scores[3] - scores[1])
    assert ve.safe_name("rs1:A>G/x y") == "rs1_A_G_x_y"
    assert ve.default_folder("out/effects.tsv.gz") == Path("out/effects.explain")
    assert ve.default_folder(None) == Path("variants.explain")


@pytest.fixture(scope="module")
def explained(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain")
    fasta, lines = ctcf_genome(folder, n_sites=3)
    tsv = folder / "v.tsv"
    tsv.write_text("\n".join(lines) + "\n")
    out = folder / "effects.tsv"
    code = main(["variants", "--fasta", str(fasta), "--variants", str(tsv), "--model", str(trained["dir"]),
                 "-o", str(out), "--explain", "3", "-q"])
    return {"code": code, "rows": read_rows(out), "dir": folder / "effects.explain", "fasta": fasta, "tsv": tsv}


def test_cli_explains_the_largest_effects_beside_the_output(explained, trained):
    from serving.attribution import DEFAULT_METHOD, attribution, load_logits_fn
    from serving.dna import encode

    assert explained["code"] == EXIT_OK
    rows = sorted(explained["rows"], key=lambda r: -abs(float(r["delta_logit"])))[:3]
    index = read_rows(explained["dir"] / ve.INDEX_FILE)
    assert [r["id"] for r in index] == [r["id"] for r in rows] and [r["rank"] for r in index] == ["1", "2", "3"]
    assert all(r["method"] == DEFAULT_METHOD and float(r["ref_convergence_delta"]) >= 0 for r in index)
    first = index[0]
    maps = np.load(explained["dir"] / first["npy"])
    assert maps.shape == (3, L, 4) and maps.dtype == np.float32
    np.testing.assert_allclose(maps[2], maps[1] - maps[0], atol=1e-6)
    png = (explained["dir"] / first["png"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the maps are serving.attribution's of the two windows, and the variant's own base carries the change
    seq = "".join(explained["fasta"].read_text().splitlines()[1:])
    p0 = int(first["pos"]) - 1
    ref_w = seq[p0 - L // 2:p0 + L // 2]
    alt_w = ref_w[:L // 2] + first["alt"] + ref_w[L // 2 + 1:]
    want = attribution(load_logits_fn(trained["dir"], quiet=True), encode([ref_w, alt_w], L), DEFAULT_METHOD).scores
    np.testing.assert_allclose(maps[:2], want, atol=1e-5 * float(np.abs(want).max()))
    ref_base = "ACGT".index(first["ref"])
    assert maps[0, L // 2, ref_base] > 0 and maps[2, L // 2, ref_base] == pytest.approx(-maps[0, L // 2, ref_base])


def test_explain_dir_and_usage_errors(explained, trained, tmp_path, capsys):
    out, where = tmp_path / "e.tsv", tmp_path / "chosen"
    assert main(["variants", "--fasta", str(explained["fasta"]), "--variants", str(explained["tsv"]), "--model",
                 str(trained["dir"]), "-o", str(out), "--explain", "1", "--explain-dir", str(where), "-q"]) == EXIT_OK
    assert len(list(where.glob("*.png"))) == 1 and len(list(where.glob("*.npy"))) == 1
    assert main(["variants", "--fasta", str(explained["fasta"]), "--variants", str(explained["tsv"]), "--model",
                 str(trained["dir"]), "-o", str(out), "--explain", "-2"]) == EXIT_USAGE
    assert "--explain must be >= 0" in capsys.readouterr().err


def test_service_variants_explain(server, trained, explained):
    seq = "".join(explained["fasta"].read_text().splitlines()[1:])[:1400]
    core = next(r for r in explained["rows"] if r["id"].startswith("core_0_"))
    items = [{"pos": int(core["pos"]), "ref": core["ref"], "alt": core["alt"], "id": "core"},
             {"pos": 3, "ref": seq[2], "alt": "A" if seq[2] != "A" else "C", "id": "edge"}]
    plain = httpx.post(f"{server.url}/variants", json={"sequence": seq, "variants": items}, timeout=120)
    assert plain.status_code == 200, plain.text
    assert "explain" not in plain.json()[0] and 0 < plain.json()[0]["p_value"] < 0.05
    r = httpx.post(f"{server.url}/variants", json={"sequence": seq, "variants": items, "explain": True},
                   timeout=300)
    assert r.status_code == 200, r.text
    core_row, edge_row = r.json()
    assert edge_row["explain"] is None and edge_row["status"].startswith("window_off_chromosome")
    got = core_row["explain"]
    ref, alt, diff = (np.asarray(got[k]) for k in ("ref", "alt", "difference"))
    assert ref.shape == alt.shape == (L, 4)
    np.testing.assert_allclose(diff, alt - ref, atol=1e-6)
    from serving.attribution import DEFAULT_METHOD, attribution, load_logits_fn
    from serving.dna import encode

    p0 = int(core["pos"]) - 1
    windows = [seq[p0 - L // 2:p0 + L // 2], seq[p0 - L // 2:p0] + core["alt"] + seq[p0 + 1:p0 + L // 2]]
    want = attribution(load_logits_fn(trained["dir"], quiet=True), encode(windows, L), DEFAULT_METHOD).scores
    np.testing.assert_allclose(np.stack([ref, alt]), want, atol=1e-5 * float(np.abs(want).max()))  # as in Python
    assert got["method"] == "expected_gradients" and got["ref_convergence_delta"] >= 0
