"""serving.scoring.variants and mutagenesis: effect = predict(alt) - predict(ref) on the centred window (never
shifted: a window off the sequence gets window_off_chromosome), ref checked against the sequence (mismatch reported
per variant), TSV and VCF input, genome-coordinate records, and saturation mutagenesis (every substitution's logit
change) with its logo."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.scoring import mutagenesis as mu
from serving.scoring import variants as va
from serving.cli import EXIT_OK, EXIT_REJECTS, main
from serving.dna import random_dna
from serving.fasta import write_fasta

L = 200


def random_seq(n: int, seed: int) -> str:
    return random_dna(1, n, seed)[0]


def other_base(b: str) -> str:
    return {"A": "G", "C": "T", "G": "A", "T": "C"}[b.upper()]



@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    seqs = {"s1": random_seq(1000, 1), "chr3:5000-5600": random_seq(600, 2), "short": random_seq(150, 3)}
    path = tmp_path_factory.mktemp("ref") / "ref.fa"
    write_fasta(list(seqs.items()), path)
    return path, seqs


def test_windows_are_centred_on_the_variant_and_never_shifted():
    seq = random_seq(1000, 4)
    ref_w, alt_w = va.variant_windows(seq, 500, seq[500], "T", L)
    assert ref_w == seq[400:600] and alt_w == seq[400:500] + "T" + seq[501:600]
    ref_w, alt_w = va.variant_windows(seq, 500, seq[500:503], seq[500], L)  # deletion: filled from the right
    assert alt_w == seq[400:501] + seq[503:602]
    ref_w, alt_w = va.variant_windows(seq, 500, seq[500], seq[500] + "GGG", L)  # insertion: cut on the right
    assert alt_w == seq[400:501] + "GGG" + seq[501:597]
    assert va.variant_windows(seq, 100, seq[100], "T", L)[0] == seq[:200]  # the first that fits
    assert va.variant_windows(seq, 900, seq[900], "T", L)[0] == seq[800:]  # the last that fits
    for p0, ref in ((99, seq[99]), (901, seq[901]), (900, seq[900:902])):  # a window would leave the sequence
        with pytest.raises(ValueError, match="not inside"):
            va.variant_windows(seq, p0, ref, "T", L)
    assert va.window_span(900, seq[900:902], "T", L) == (800, 1001)  # a deletion's alt window reads one further


def test_effect_equals_alt_minus_ref_and_wrong_ref_is_reported(predictor, reference, tmp_path):
    fa, seqs = reference
    s1, c3 = seqs["s1"], seqs["chr3:5000-5600"]
    lines = ["chrom\tpos\tref\talt\tid",
             f"s1\t501\t{s1[500]}\t{other_base(s1[500])}\tmid",
             f"s1\t1\t{s1[0]}\t{other_base(s1[0])}\tfirst_base",
             f"s1\t1000\t{s1[999]}\t{other_base(s1[999])}\tlast_base",
             f"s1\t300\t{other_base(s1[299])}\t{s1[299]}\twrong_ref",
             f"chr3\t5101\t{c3[100]}\t{other_base(c3[100])}\tgenome_coords",  # 1-based 5101 = record index 100
             "chrX\t10\tA\tG\tnowhere",
             "s1\t1001\tA\tG\tpast_end",
             f"short\t10\t{seqs['short'][9]}\tA\ttoo_short",
             f"s1\t50\t{s1[49]}\t<DEL>\tsymbolic"]
    tsv = tmp_path / "v.tsv"
    tsv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "effects.tsv"
    assert main(["variants", "--fasta", str(fa), "--variants", str(tsv), "--model", str(predictor.model_dir),
                 "-o", str(out), "-q"]) == EXIT_REJECTS
    rows = [line.split("\t") for line in out.read_text().splitlines()]
    header, rows = rows[0], {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert header == va.HEADER.rstrip("\n").split("\t")
    assert list(rows) == ["mid", "first_base", "last_base", "wrong_ref", "genome_coords", "nowhere", "past_end",
                          "too_short", "symbolic"]
    expected_windows = {
        "mid": (s1[400:600], s1[400:500] + other_base(s1[500]) + s1[501:600]),
        "genome_coords": (c3[:200], c3[:100] + other_base(c3[100]) + c3[101:200]),
    }
    for vid, (ref_w, alt_w) in expected_windows.items():
        pr, pa = predictor.predict_sequences([ref_w]), predictor.predict_sequences([alt_w])
        r = rows[vid]
        assert r["status"] == "ok"
        np.testing.assert_allclose(float(r["delta_logit"]), pa["logit"][0] - pr["logit"][0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(float(r["delta_probability"]), pa["probability"][0] - pr["probability"][0],
                                   atol=1e-6)
        np.testing.assert_allclose(float(r["ref_logit"]), pr["logit"][0], rtol=1e-6, atol=1e-6)
    assert rows["wrong_ref"]["ref_probability"] == "NA"
    assert rows["wrong_ref"]["status"] == (f"ref mismatch: the sequence has {s1[299]!r} at s1:300, "
                                           f"the variant says {other_base(s1[299])!r}")
    assert "'chrX' is not in ref.fa" in rows["nowhere"]["status"]
    assert "position 1,001 is outside s1 (1-1,000)" in rows["past_end"]["status"]
    for vid in ("first_base", "last_base", "too_short"):  # no shifted window: a status and no score
        assert rows[vid]["status"].startswith("window_off_chromosome: ") and rows[vid]["delta_logit"] == "NA"
    assert "unsupported allele" in rows["symbolic"]["status"]


def test_vcf_records_inside_the_sequences(predictor, reference, tmp_path):
    from serving.genome import Genome
    from serving.scoring.vcf import VcfInput, score_variant_chunk

    fa, seqs = reference
    c3 = seqs["chr3:5000-5600"]
    b = c3[299]
    alts = [x for x in "ACGT" if x != b][:2]
    vcf = tmp_path / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"chr3\t5300\trs1\t{b}\t{','.join(alts)}\t.\tPASS\t.\n"
                   f"chr3\t5301\t.\t{c3[300]}\t{other_base(c3[300])}\t.\tPASS\t.\n")
    vs = [v for rec in VcfInput(vcf).records() for v in rec.variants]
    assert [v.name for v in vs] == [f"rs1:{alts[0]}", f"rs1:{alts[1]}", f"chr3:5301:{c3[300]}>{other_base(c3[300])}"]
    rows = score_variant_chunk(predictor, Genome(fa, quiet=True), vs)
    assert all(v.status == "ok" for v in vs)
    ref_w = c3[199:399]  # 0-based 299 centred: window [199, 399)
    for i, alt in enumerate(alts):
        alt_w = c3[199:299] + alt + c3[300:399]
        want = predictor.predict_sequences([alt_w])["logit"][0] - predictor.predict_sequences([ref_w])["logit"][0]
        np.testing.assert_allclose(rows[i]["delta_logit"], want, rtol=1e-5, atol=1e-5)


def test_saturation_mutagenesis_and_logo(predictor, tmp_path):
    seq = random_seq(L, 8)
    delta, ref_logit = mu.saturation_mutagenesis(predictor, seq)
    assert delta.shape == (L, 4)
    np.testing.assert_allclose(ref_logit, predictor.predict_sequences([seq])["logit"][0], rtol=1e-6, atol=1e-6)
    ref_idx = np.array(["ACGT".index(c) for c in seq])
    assert np.all(np.abs(delta[np.arange(L), ref_idx]) < 1e-5)
    rng = np.random.default_rng(0)
    for i, bi in zip(rng.integers(0, L, 6), rng.integers(0, 4, 6)):
        mutant = seq[:i] + "ACGT"[bi] + seq[i + 1 :]
        want = predictor.predict_sequences([mutant])["logit"][0] - ref_logit
        np.testing.assert_allclose(delta[i, bi], want, rtol=1e-5, atol=1e-5)
    centred = mu.mean_centred(delta)
    np.testing.assert_allclose(centred.mean(axis=1), 0, atol=1e-6)
    tsv, png = tmp_path / "ism.tsv", tmp_path / "ism.png"
    assert main(["mutagenesis", "--sequence", seq, "--model", str(predictor.model_dir), "-o", str(tsv),
                 "--png", str(png), "-q"]) == EXIT_OK
    rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    assert rows[0] == ["id", "position", "ref", "delta_logit_A", "delta_logit_C", "delta_logit_G", "delta_logit_T"]
    assert len(rows) == L + 1 and rows[1][:3] == ["sequence", "1", seq[0]]
    np.testing.assert_allclose(np.array([r[3:] for r in rows[1:]], float), delta, rtol=1e-4, atol=1e-5)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="length 199, the model expects 200"):
        mu.saturation_mutagenesis(predictor, seq[:199])


def test_a_long_ism_figure_magnifies_its_strongest_stretch():
    from serving import plots

    rng = np.random.default_rng(5)
    seq = random_seq(L, 9)
    delta = rng.normal(0, 0.01, (L, 4)).astype(np.float32)
    delta[120:139] -= 2.0  # substitutions at 120-138 lose binding: the bases that matter
    delta[np.arange(L), ["ACGT".index(c) for c in seq]] = 0.0
    fig = mu.mutagenesis_figure(delta, seq, title="x: ISM")
    fig.canvas.draw()
    logo, heat, _, whole = fig.axes
    s = plots.strongest_stretch(mu.reference_importance(delta, seq))
    assert abs(s + plots.ZOOM_NT / 2 - 129) <= 3 and logo.get_xlim() == (s - 1, s + plots.ZOOM_NT)
    assert f"positions {s}-{s + plots.ZOOM_NT - 1} of {L}" in logo.get_title()
    assert heat.get_xlim() == logo.get_xlim() and whole.get_xlim() == (-1, L)
    px = logo.get_window_extent().width / (plots.ZOOM_NT + 1) * plots.DPI / fig.dpi
    assert px >= 18  # readable letters and cells (the single 200-position track: ~5 px)
    plots.pyplot().close(fig)
    short = mu.mutagenesis_figure(delta[:40], seq[:40])
    assert len(short.axes) == 3  # logo, heat map, colour bar: no magnified stretch under 80 positions
    plots.pyplot().close(short)
