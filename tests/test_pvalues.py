"""Variant effects on a scale (serving/scoring/pvalues.py, training/null_effects.py): the null drawn at export and by
`bindcnn null`, p = (1 + #{null >= |d|}) / (1 + n) in the TSV, the annotated VCF and the Python API, NA and a note
without a null; and on CTCF sites planted in random DNA, substitutions in motif cores get small p-values while
substitutions in the background do not."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from serving.artifact import read_metadata, verify_model_dir, write_metadata
from serving.cli import EXIT_OK, main
from serving.dna import random_dna
from serving.scoring import pvalues as pv
from tests.genome_files import plant, write_genome

L = 200
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def test_p_values_count_the_null_at_least_as_large():
    null = np.array([0.1, 0.2, 0.2, 0.5, 1.0], np.float32)
    p = pv.p_values(null, np.array([0.0, -0.2, 0.2, 0.3, 1.0, -1.5, np.nan]))
    np.testing.assert_allclose(p[:6], np.array([6, 5, 5, 3, 2, 1]) / 6)  # ties count as "at least as large"
    assert np.isnan(p[6])
    big = np.sort(np.random.default_rng(0).exponential(size=10_000)).astype(np.float32)
    d = np.linspace(0, 12, 500)
    q = pv.p_values(big, d)
    assert np.all(np.diff(q) <= 0) and q[0] == 1.0 and q[-1] == pytest.approx(1 / 10_001)


def test_background_substitutions_change_the_centre_base_only():
    from training.null_effects import background_substitutions

    ref, alt = background_substitutions(1000, L, seed=3)
    assert ref.shape == (1000, L) and ref.max() <= 3  # genome-like background: no N
    assert np.all(alt != ref[:, L // 2]) and set(np.unique(alt)) == {0, 1, 2, 3}
    again = background_substitutions(1000, L, seed=3)
    assert np.array_equal(again[0], ref) and np.array_equal(again[1], alt)
    assert not np.array_equal(background_substitutions(1000, L, seed=4)[0], ref)
    np.testing.assert_array_equal(ref[1, :-1], ref[0, 1:])  # consecutive windows of one stretch


def test_draw_null_scores_the_substitutions_on_both_strand_modes(predictor):
    from serving.substitutions import reverse_strand
    from training.null_effects import background_substitutions, draw_null

    null = draw_null(predictor, n=600, seed=1)
    assert null.shape == (2, 600) and null.dtype == np.float32
    assert np.all(np.diff(null, axis=1) >= 0) and np.all(null >= 0)
    ref, alt = background_substitutions(600, L, seed=1)
    mut = ref.copy()
    mut[:, L // 2] = alt
    fwd = predictor.predict_codes(mut)["logit"] - predictor.predict_codes(ref)["logit"]
    both = (predictor.predict_codes(mut, reverse_complement_average=True)["logit"]
            - predictor.predict_codes(ref, reverse_complement_average=True)["logit"])
    np.testing.assert_allclose(null[0], np.sort(np.abs(fwd)), atol=2e-5)
    np.testing.assert_allclose(null[1], np.sort(np.abs(both)), atol=2e-5)
    assert np.array_equal(draw_null(predictor, n=600, seed=1), null)
    assert reverse_strand(ref).shape == ref.shape


def test_export_writes_the_null_into_the_folder_and_its_metadata(trained):
    meta = verify_model_dir(trained["dir"])  # checksums valid, null_effects.npy among them
    spec = meta[pv.METADATA_KEY]
    assert spec["file"] == pv.NULL_FILE and pv.NULL_FILE in meta["files"]
    assert spec["count"] >= 100_000 and isinstance(spec["seed"], int) and "background" in spec["source"]
    null = pv.load_null(trained["dir"], meta)
    assert null.shape == (2, spec["count"]) and np.all(np.diff(null, axis=1) >= 0)
    for i, row in enumerate(pv.ROWS):
        assert spec["quantiles"][row]["0.5"] == pytest.approx(float(np.quantile(null[i], 0.5)), rel=1e-5)
        assert spec["quantiles"][row]["0.99"] > spec["quantiles"][row]["0.5"] > 0


def ctcf_genome(folder: Path, n_sites: int = 16, spacing: int = 600) -> tuple[Path, list[str]]:
    """Random DNA with the MA0139.1 consensus planted every `spacing` bp (alternating strands), and variants: every
    core position of every site (information > 1 bit) changed to the base the motif likes least, and background
    positions >= 250 bp from any site changed at random. -> (FASTA, variant TSV lines)."""
    from training.datasets.jaspar import load_jaspar

    _, counts = load_jaspar()
    ppm = counts / counts.sum(axis=1, keepdims=True)
    info = 2 + (ppm * np.log2(np.where(ppm > 0, ppm, 1))).sum(axis=1)
    consensus = "".join("ACGT"[i] for i in ppm.argmax(axis=1))
    core = np.flatnonzero(info > 1.0)
    seq = random_dna(1, spacing * (n_sites + 1), 11)[0]
    lines = []
    rng = np.random.default_rng(2)
    for k in range(n_sites):
        at = spacing * (k + 1) - len(consensus) // 2
        forward = k % 2 == 0
        seq = plant(seq, at, consensus if forward else consensus[::-1].translate(COMPLEMENT))
        for j in core:
            q = at + (j if forward else len(consensus) - 1 - j)
            worst = "ACGT"[ppm[j].argmin()]
            lines.append((q, worst if forward else worst.translate(COMPLEMENT), f"core_{k}_{j}"))
    for k in range(n_sites):
        for d in range(-30, 31, 10):
            q = spacing * (k + 1) + spacing // 2 + d
            lines.append((q, "ACGT"[("ACGT".index(seq[q]) + int(rng.integers(1, 4))) % 4], f"background_{k}_{d}"))
    fasta, _ = write_genome(folder, {"chr1": seq})
    return fasta, [f"chr1\t{q + 1}\t{seq[q]}\t{alt}\t{vid}" for q, alt, vid in lines]


def read_rows(path: Path) -> list[dict[str, str]]:
    lines = [line.split("\t") for line in path.read_text().splitlines()]
    return [dict(zip(lines[0], r)) for r in lines[1:]]


def test_motif_core_substitutions_get_small_p_values_and_background_ones_do_not(trained, tmp_path, capsys):
    fasta, lines = ctcf_genome(tmp_path)
    tsv = tmp_path / "v.tsv"
    tsv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "effects.tsv"
    assert main(["variants", "--fasta", str(fasta), "--variants", str(tsv), "--model", str(trained["dir"]),
                 "-o", str(out), "-q"]) == EXIT_OK
    rows = read_rows(out)
    assert list(rows[0])[-2:] == ["p_value", "status"]
    null = pv.load_null(trained["dir"], read_metadata(trained["dir"]))
    step = 1 / (1 + null.shape[1])  # one null draw: the printed delta (7 digits) may sit across one from the exact
    for r in rows:  # each p-value is the definition's, on the forward-strand null
        assert float(r["p_value"]) == pytest.approx(float(pv.p_values(null[0], [float(r["delta_logit"])])[0]),
                                                    abs=1.5 * step)
    core = np.array([float(r["p_value"]) for r in rows if r["id"].startswith("core")])
    background = np.array([float(r["p_value"]) for r in rows if r["id"].startswith("background")])
    print(f"median p: motif cores {np.median(core):.3g} (n={len(core)}), background {np.median(background):.3g} "
          f"(n={len(background)})")
    # the small test model: medians ~0.008 and ~0.47 (models/ctcf, trained on the full built-in set: 2e-4 and 0.55)
    assert np.median(core) < 0.03 and np.median(background) > 0.2
    assert np.mean(core < 0.05) > 0.6 and np.mean(background < 0.05) < 0.2


def test_rc_scores_use_the_rc_null_and_the_vcf_carries_bindcnn_p(trained, tmp_path):
    fasta, lines = ctcf_genome(tmp_path, n_sites=2)
    vcf = tmp_path / "v.vcf"
    records = [ln.split("\t") for ln in lines]
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   + "".join(f"{c}\t{p}\t{i}\t{r}\t{a}\t.\tPASS\t.\n" for c, p, r, a, i in records)
                   + f"chr1\t3\tedge\t{Path(fasta).read_text().splitlines()[1][2]}\tA\t.\tPASS\t.\n")
    out, annotated = tmp_path / "effects.tsv", tmp_path / "annotated.vcf"
    main(["variants", "--fasta", str(fasta), "--vcf", str(vcf), "--model", str(trained["dir"]), "--rc",
          "-o", str(out), "--vcf-out", str(annotated), "-q"])
    rows = {r["id"]: r for r in read_rows(out)}
    null = pv.load_null(trained["dir"], read_metadata(trained["dir"]))
    some = rows[records[0][4]]
    assert float(some["p_value"]) == pytest.approx(float(pv.p_values(null[1], [float(some["delta_logit"])])[0]),
                                                   rel=1e-6)
    text = annotated.read_text()
    assert '##INFO=<ID=BINDCNN_P,Number=A,Type=Float,Description="' in text
    info = {ln.split("\t")[2]: ln.split("\t")[7] for ln in text.splitlines() if not ln.startswith("#")}
    p = float(info[records[0][4]].split("BINDCNN_P=")[1].split(";")[0])
    assert p == pytest.approx(float(some["p_value"]), rel=1e-5)
    assert rows["edge"]["p_value"] == "NA" and "BINDCNN_P" not in info["edge"]  # window off the chromosome


def test_a_folder_without_a_null_says_na_and_bindcnn_null_adds_one(trained, tmp_path, capsys):
    folder = tmp_path / "old"
    shutil.copytree(trained["dir"], folder)
    (folder / pv.NULL_FILE).unlink()
    meta = read_metadata(folder)
    del meta[pv.METADATA_KEY]
    write_metadata(folder, meta)  # a folder as exported before nulls existed
    fasta, lines = ctcf_genome(tmp_path, n_sites=2)
    tsv = tmp_path / "v.tsv"
    tsv.write_text("\n".join(lines) + "\n")
    out = tmp_path / "effects.tsv"
    capsys.readouterr()
    assert main(["variants", "--fasta", str(fasta), "--variants", str(tsv), "--model", str(folder), "-o", str(out),
                 "-q"]) == EXIT_OK
    assert f"add it with: bindcnn null --model {folder}" in capsys.readouterr().err
    rows = read_rows(out)
    assert all(r["p_value"] == "NA" and r["delta_logit"] != "NA" for r in rows)

    assert main(["null", "--model", str(folder), "--n", "5000", "--seed", "9", "--no-register"]) == EXIT_OK
    err = capsys.readouterr().err
    after = verify_model_dir(folder)  # checksums rewritten, the new file among them
    assert after["version"] != meta["version"] and after["version"] in err
    assert after[pv.METADATA_KEY]["count"] == 5000 and after[pv.METADATA_KEY]["seed"] == 9
    assert main(["variants", "--fasta", str(fasta), "--variants", str(tsv), "--model", str(folder), "-o", str(out),
                 "-q"]) == EXIT_OK
    assert all(0.99999 / 5001 <= float(r["p_value"]) <= 1 for r in read_rows(out))  # the smallest is 1 / (n + 1)
    assert main(["null", "--model", str(folder), "--n", "10"]) == 2  # too few draws for a p-value: exit 2


def test_python_api_rows_carry_p_values(trained):
    from serving import load_model

    model = load_model(trained["dir"])
    seq = random_dna(1, 400, 5)[0]
    alt = "A" if seq[200] != "A" else "C"
    rows = model.variants(seq, [(201, seq[200], alt, "v"), (5, seq[4], alt, "edge")])
    assert 0 < rows[0]["p_value"] <= 1 and "p_value" not in rows[1]
    json.dumps(rows)
