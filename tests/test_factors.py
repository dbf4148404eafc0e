"""Many factors (issue 26): built-in sets for any JASPAR matrix, models that record it, several models scored in
one command with columns equal to each model alone, and `bindcnn models` listing them with their cards."""
from __future__ import annotations

import json

import numpy as np
import pytest

from serving.cli import EXIT_OK, EXIT_USAGE, main
from serving.dna import decode
from serving.fasta import write_fasta
from tests.conftest import REST_MODEL_NAME, TEST_MODEL_NAME, ToyPredictor


def test_a_matrix_is_fetched_by_id_with_or_without_version():
    from training.datasets.jaspar import fetch_jaspar

    name, counts = fetch_jaspar("MA0138")
    assert name.startswith("MA0138.") and name.endswith(" REST")
    assert counts.ndim == 2 and counts.shape[1] == 4 and (counts >= 0).all()
    older, older_counts = fetch_jaspar("ma0138.2")
    assert older == "MA0138.2 REST"
    assert fetch_jaspar("MA0139.1")[0] == "MA0139.1 CTCF"
    for bad, words in (("MA9999", "no matrix MA9999"), ("REST", "not a JASPAR CORE matrix ID")):
        with pytest.raises(ValueError, match=words):
            fetch_jaspar(bad)


def test_synthetic_motif_writes_a_set_that_records_its_matrix(tmp_path, capsys):
    from training.baseline import pwm_baseline
    from training.datasets import load_h5
    from training.datasets.synthetic import write_synthetic

    out = tmp_path / "rest.h5"
    assert main(["synthetic", "--motif", "MA0138", "--n", "600", "--out", str(out)]) == EXIT_OK
    ds = load_h5(out)
    assert ds.description.startswith("built-in synthetic REST set v2 (JASPAR MA0138.")
    assert ds.matrix.startswith(">MA0138.") and " REST" in ds.matrix.splitlines()[0]
    # the baseline reads the recorded matrix: REST's own matrix finds the planted sites, CTCF's does not
    own = pwm_baseline(ds.x["test"], ds.y["test"], matrix_text=ds.matrix)
    ctcf = pwm_baseline(ds.x["test"], ds.y["test"])
    assert own["matrix"].endswith("REST") and ctcf["matrix"] == "MA0139.1 CTCF"
    assert own["auroc"] > ctcf["auroc"] + 0.15
    # the default set records no matrix and keeps its description
    default = load_h5(write_synthetic(tmp_path / "ctcf.h5", n=300))
    assert default.matrix == "" and default.description.startswith("built-in synthetic CTCF set v2 (JASPAR MA0139.1")

    assert main(["synthetic", "--motif", "MA9999", "--n", "300", "--out", str(tmp_path / "x.h5")]) == EXIT_USAGE
    assert "no matrix MA9999" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_download_still_offers_the_records_nine_factors():
    from training.datasets.download import ZENODO_TFS

    with pytest.raises(SystemExit):
        main(["download", "--tf", "NOPE", "--out", "x.h5"])
    assert len(ZENODO_TFS) == 9 and {"CTCF", "REST"} <= set(ZENODO_TFS)


def test_a_second_factors_model_records_its_matrix_and_baseline(rest_model, trained):
    from serving.cards import model_card

    meta = rest_model["meta"]
    assert meta["factor"]["name"] == "REST" and meta["factor"]["matrix_id"].startswith("MA0138.")
    assert np.asarray(meta["factor"]["matrix"]).shape[0] == 4
    assert meta["baseline"]["pwm"]["matrix"].startswith("MA0138.")
    card = model_card(meta)
    assert (card["name"], card["factor"]) == (REST_MODEL_NAME, "REST")
    assert card["test_auroc"] == round(meta["metrics"]["test"]["auroc"], 4)
    assert card["pwm_auroc"] == round(meta["baseline"]["pwm"]["auroc"], 4)
    assert model_card(trained["meta"])["factor"] == "CTCF"


def _mixed_fasta(path, trained, rest_model) -> None:
    from training.datasets import load_h5

    records = []
    for data in (trained["data"], rest_model["data"]):
        ds = load_h5(data)
        records += [(f"s{len(records) + i}", s) for i, s in enumerate(decode(ds.x["test"][:150]))]
    records.insert(7, ("short", "ACGT"))
    write_fasta(records, path)


def test_score_with_two_models_gives_each_models_own_columns(trained, rest_model, tmp_path):
    fasta = tmp_path / "mixed.fa"
    _mixed_fasta(fasta, trained, rest_model)
    a, b = str(trained["dir"]), str(rest_model["dir"])
    alone = {}
    for name, model in ((TEST_MODEL_NAME, a), (REST_MODEL_NAME, b)):
        main(["score", "--model", model, str(fasta), "-o", str(tmp_path / f"{name}.tsv"), "-q"])
        alone[name] = [ln.split("\t") for ln in (tmp_path / f"{name}.tsv").read_text().splitlines()]
        assert alone[name][0] == ["id", "probability", "logit"]  # one model: today's columns
    main(["score", "--model", a, "--model", b, str(fasta), "-o", str(tmp_path / "both.tsv"), "-q"])
    both = [ln.split("\t") for ln in (tmp_path / "both.tsv").read_text().splitlines()]
    assert both[0] == ["id", f"probability_{TEST_MODEL_NAME}", f"logit_{TEST_MODEL_NAME}",
                       f"probability_{REST_MODEL_NAME}", f"logit_{REST_MODEL_NAME}"]
    assert len(both) == len(alone[TEST_MODEL_NAME])
    for row, first, second in zip(both[1:], alone[TEST_MODEL_NAME][1:], alone[REST_MODEL_NAME][1:]):
        assert row == first + second[1:]
    # the two models disagree somewhere: each column is its own model's
    p1 = np.array([float(r[1]) for r in both[1:] if r[1] != "NA"])
    p2 = np.array([float(r[3]) for r in both[1:] if r[3] != "NA"])
    assert np.abs(p1 - p2).max() > 0.3


def test_models_of_different_lengths_or_one_name_are_refused_and_mutagenesis_takes_one(trained, rest_model, tmp_path,
                                                                                   capsys):
    from serving.model_set import ModelSet
    from serving.predictor import Predictor

    p = Predictor(trained["dir"], device="cpu")
    try:
        with pytest.raises(ValueError, match="same sequence length"):
            ModelSet(["a", "b"], [p, ToyPredictor(length=10)])
    finally:
        p.close()
    fasta = tmp_path / "one.fa"
    write_fasta([("x", "A" * 300)], fasta)
    m = str(trained["dir"])
    assert main(["mutagenesis", "--model", m, "--model", m, "--fasta", str(fasta)]) == EXIT_USAGE
    assert "takes one --model" in capsys.readouterr().err
    assert main(["score", "--model", m, "--model", m, str(fasta)]) == EXIT_USAGE  # columns would clash
    assert "both named" in capsys.readouterr().err
    two = ["--model", m, "--model", str(rest_model["dir"])]
    assert main(["scan", *two, str(fasta)]) == EXIT_USAGE  # two tracks cannot share stdout
    assert "a file per model" in capsys.readouterr().err


def test_scan_with_two_models_writes_each_models_own_tracks(trained, rest_model, tmp_path):
    from serving.dna import random_dna

    fasta = tmp_path / "long.fa"
    write_fasta([("chr1:1000-1900", random_dna(1, 900, seed=3)[0]), ("short", "ACGT"),
                 ("chr2:0-450", random_dna(1, 450, seed=4)[0])], fasta)
    models = {TEST_MODEL_NAME: str(trained["dir"]), REST_MODEL_NAME: str(rest_model["dir"])}
    both = ["scan", "--stride", "7", "--bedgraph", str(tmp_path / "both.bedgraph"), "--bed", str(tmp_path / "both.bed"),
            "-o", str(tmp_path / "both.tsv"), "--threshold", "0.3", "-q", str(fasta)]
    main([*both[:1], *[a for m in models.values() for a in ("--model", m)], *both[1:]])
    texts = set()
    for name, model in models.items():
        main(["scan", "--model", model, "--stride", "7", "--bedgraph", str(tmp_path / "one.bedgraph"), "--bed",
              str(tmp_path / "one.bed"), "-o", str(tmp_path / "one.tsv"), "--threshold", "0.3", "-q", str(fasta)])
        for ext in ("bedgraph", "bed", "tsv"):
            mine = (tmp_path / f"both.{name}.{ext}").read_text()
            assert mine == (tmp_path / f"one.{ext}").read_text(), (name, ext)
        texts.add((tmp_path / f"both.{name}.bedgraph").read_text())
    assert len(texts) == 2  # two models, two different tracks


def test_models_command_lists_folders_with_their_cards(trained, rest_model, capsys):
    root = str(trained["dir"].parent)
    assert main(["models", "--models", root, "--no-store", "--json"]) == EXIT_OK
    cards = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert cards[TEST_MODEL_NAME]["factor"] == "CTCF" and cards[REST_MODEL_NAME]["factor"] == "REST"
    assert cards[REST_MODEL_NAME]["matrix_id"].startswith("MA0138.")
    assert main(["models", "--models", root]) == EXIT_OK  # text, store included
    text = capsys.readouterr().out
    assert "REST (MA0138." in text and "BentoML store" in text and "PWM baseline AUROC" in text


def test_variants_with_two_models_give_each_models_columns_and_info(trained, rest_model, tmp_path):
    from serving.dna import random_dna
    from tests.genome_files import write_genome

    chrom = random_dna(1, 3000, seed=5)[0]
    genome = write_genome(tmp_path, {"chr1": chrom})[0]
    other = {"A": "C", "C": "G", "G": "T", "T": "A"}
    recs = [f"chr1\t{p + 1}\tv{p}\t{chrom[p]}\t{other[chrom[p]]}\t50\tPASS\t." for p in range(150, 2850, 97)]
    recs.append(f"chr1\t2\toff\t{chrom[1]}\t{other[chrom[1]]}\t50\tPASS\t.")  # window off the chromosome
    vcf = tmp_path / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr1,length=3000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\t"
                   "INFO\n" + "\n".join(recs) + "\n")
    models = {TEST_MODEL_NAME: str(trained["dir"]), REST_MODEL_NAME: str(rest_model["dir"])}
    alone = {}
    for name, model in models.items():
        main(["variants", "--model", model, "--genome", str(genome), "--vcf", str(vcf), "-o",
              str(tmp_path / f"{name}.tsv"), "--vcf-out", str(tmp_path / f"{name}.vcf"), "-q"])
        alone[name] = [ln.split("\t") for ln in (tmp_path / f"{name}.tsv").read_text().splitlines()]
    main(["variants", *[a for m in models.values() for a in ("--model", m)], "--genome", str(genome), "--vcf",
          str(vcf), "-o", str(tmp_path / "both.tsv"), "--vcf-out", str(tmp_path / "both.vcf"), "-q"])
    both = [ln.split("\t") for ln in (tmp_path / "both.tsv").read_text().splitlines()]
    one, two = alone[TEST_MODEL_NAME], alone[REST_MODEL_NAME]
    k = one[0].index("status")
    assert both[0][:5] == one[0][:5] and f"delta_logit_{REST_MODEL_NAME}" in both[0]
    assert both[0][5:-1] == [f"{f}_{n}" for n in models for f in one[0][5:k]]
    for row, a, b in zip(both[1:], one[1:], two[1:]):
        assert row == a[:k] + b[5:k] + [a[k]]
    assert both[-1][-1].startswith("window_off")

    def info(path) -> list[dict[str, str]]:
        lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
        return [dict(kv.split("=", 1) for kv in ln.split("\t")[7].split(";") if "=" in kv) for ln in lines]

    text = (tmp_path / "both.vcf").read_text()
    assert f"##INFO=<ID=BINDCNN_{REST_MODEL_NAME.upper()}_DELTA_LOGIT," in text
    for mine, a, b in zip(info(tmp_path / "both.vcf"), info(tmp_path / f"{TEST_MODEL_NAME}.vcf"),
                          info(tmp_path / f"{REST_MODEL_NAME}.vcf")):
        assert mine["BINDCNN_STATUS"] == a["BINDCNN_STATUS"]
        for name, alone_info in ((TEST_MODEL_NAME, a), (REST_MODEL_NAME, b)):
            for key, value in alone_info.items():
                if key != "BINDCNN_STATUS":
                    assert mine[key.replace("BINDCNN_", f"BINDCNN_{name.upper()}_", 1)] == value


def test_genome_scan_with_two_models_writes_each_models_own_tracks(trained, rest_model, tmp_path):
    from serving.dna import random_dna
    from tests.genome_files import write_genome

    genome = write_genome(tmp_path, {"chr1": random_dna(1, 4000, seed=6)[0], "chr2": random_dna(1, 900, seed=7)[0]})[1]
    models = {TEST_MODEL_NAME: str(trained["dir"]), REST_MODEL_NAME: str(rest_model["dir"])}
    outs = lambda stem: ["--bigwig", str(tmp_path / f"{stem}.bw"), "--bedgraph", str(tmp_path / f"{stem}.bedgraph"),
                         "--bed", str(tmp_path / f"{stem}.bed"), "--threshold", "0.3"]
    assert main(["scan", *[a for m in models.values() for a in ("--model", m)], "--genome", str(genome),
                 "--stride", "5", *outs("both"), "-q"]) == EXIT_OK
    for name, model in models.items():
        assert main(["scan", "--model", model, "--genome", str(genome), "--stride", "5", *outs("one"), "-q"]) == EXIT_OK
        for ext in ("bw", "bedgraph", "bed"):
            assert (tmp_path / f"both.{name}.{ext}").read_bytes() == (tmp_path / f"one.{ext}").read_bytes(), (name, ext)


def test_train_motif_checks_its_arguments_before_any_work(tmp_path, capsys):
    from training.commands import motif_model_name

    assert motif_model_name("MA0138.3 REST") == "rest"
    assert motif_model_name("MA0058.4 MAX::MYC") == "max-myc"
    assert main(["train", "--motif", "MA9999", "--models", str(tmp_path)]) == EXIT_USAGE
    assert "no matrix MA9999" in capsys.readouterr().err
    assert main(["train", "--motif", "MA0138", "--data", str(tmp_path / "x.h5"), "--models", str(tmp_path)]) == EXIT_USAGE
    assert "not both" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_regions_scored_by_two_models_get_each_models_columns(trained, rest_model, tmp_path):
    from serving.dna import random_dna
    from tests.genome_files import write_genome

    seq = random_dna(1, 3000, seed=9)[0]
    genome = write_genome(tmp_path, {"chr1": seq[:1500] + "NNXN" + seq[1504:]})[0]
    bed = tmp_path / "r.bed"
    bed.write_text("".join(f"chr1\t{s}\t{s + 50}\tr{s}\n" for s in range(100, 2800, 230)))
    models = {TEST_MODEL_NAME: str(trained["dir"]), REST_MODEL_NAME: str(rest_model["dir"])}
    alone = {}
    for name, model in models.items():
        main(["score", "--model", model, "--genome", str(genome), "--regions", str(bed), "-o",
              str(tmp_path / f"{name}.tsv"), "-q"])
        alone[name] = [ln.split("\t") for ln in (tmp_path / f"{name}.tsv").read_text().splitlines()]
    main(["score", *[a for m in models.values() for a in ("--model", m)], "--genome", str(genome), "--regions",
          str(bed), "-o", str(tmp_path / "both.tsv"), "-q"])
    both = [ln.split("\t") for ln in (tmp_path / "both.tsv").read_text().splitlines()]
    assert both[0] == ["chrom", "start", "end", "name", f"probability_{TEST_MODEL_NAME}", f"logit_{TEST_MODEL_NAME}",
                       f"probability_{REST_MODEL_NAME}", f"logit_{REST_MODEL_NAME}"]
    assert alone[TEST_MODEL_NAME][0][4:] == ["probability", "logit"]
    one, two = alone[TEST_MODEL_NAME], alone[REST_MODEL_NAME]
    assert len(both) == len(one) == len(two) < 1 + 12  # the window over the X is left out (a reject)
    for row, a, b in zip(both[1:], one[1:], two[1:]):
        assert row == a + b[4:]
