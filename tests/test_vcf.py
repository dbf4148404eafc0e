"""`variants --genome --vcf`: VCF/VCF.gz/BCF read with cyvcf2 in chunks, one row per ALT (SNVs and indels on windows
cut by hand), symbolic/'*'/breakend/missing ALTs kept with a status, FILTER with --pass-only, the annotated VCF read
back with cyvcf2 equal to the TSV, and the old --fasta/--variants form giving the same rows on the same genome."""
from __future__ import annotations

import numpy as np
import pytest

from serving.cli import EXIT_REJECTS, EXIT_USAGE, main
from serving.dna import encode, random_dna
from serving.scoring.variants import variant_windows
from tests.conftest import ToyPredictor
from tests.genome_files import bgzip, write_genome

L = 40


@pytest.fixture(scope="module")
def seqs() -> dict[str, str]:
    return {"chr1": random_dna(1, 2000, 31)[0], "chr2": random_dna(1, 800, 32)[0]}


@pytest.fixture(scope="module")
def genome(tmp_path_factory, seqs):
    return write_genome(tmp_path_factory.mktemp("vcfgenome"), seqs)[0]


def other(b: str) -> str:
    return {"A": "C", "C": "G", "G": "T", "T": "A"}[b.upper()]


@pytest.fixture(scope="module")
def vcf_text(seqs) -> str:
    c1, c2 = seqs["chr1"], seqs["chr2"]
    head = ["##fileformat=VCFv4.2", '##FILTER=<ID=LowQual,Description="low quality">',
            '##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">',
            "##contig=<ID=chr1,length=2000>", "##contig=<ID=chr2,length=800>", "##contig=<ID=chrZ,length=10>",
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    recs = [
        f"chr1\t101\trs1\t{c1[100]}\t{other(c1[100])},{other(other(c1[100]))}\t50\tPASS\tDP=10",  # multi-allelic
        f"chr1\t201\tdel1\t{c1[200:204]}\t{c1[200]}\t50\tPASS\t.",  # deletion
        f"chr1\t301\tins1\t{c1[300]}\t{c1[300]}CCCCC\t50\t.\t.",  # insertion
        f"chr1\t401\tsv1\t{c1[400]}\t<DEL>\t50\tPASS\tSVTYPE=DEL",  # symbolic (SVTYPE undeclared)
        f"chr1\t501\tstar\t{c1[500]}\t*,{other(c1[500])}\t50\tPASS\t.",  # '*' + a real allele
        f"chr1\t601\tbnd1\t{c1[600]}\t{c1[600]}]chr2:100]\t50\tPASS\t.",  # breakend
        f"chr1\t701\tnoalt\t{c1[700]}\t.\t50\tPASS\t.",
        f"chr1\t801\tlowq\t{c1[800]}\t{other(c1[800])}\t5\tLowQual\t.",  # FILTER
        f"chr1\t901\tmismatch\t{other(c1[900])}\t{c1[900]}\t50\tPASS\t.",
        f"chr1\t1\tfirst\t{c1[0]}\t{other(c1[0])}\t50\tPASS\t.",  # window clipped at the start
        f"chr1\t2000\tlast\t{c1[1999]}\t{other(c1[1999])}\t50\tPASS\t.",  # and at the end
        f"2\t11\talias\t{c2[10]}\t{other(c2[10])}\t50\tPASS\t.",  # '2' is chr2
        "chrZ\t5\tunknown\tA\tG\t50\tPASS\t.",
        "chr2\t801\tpast\tA\tG\t50\tPASS\t.",
    ]
    return "\n".join(head + recs) + "\n"


@pytest.fixture
def toy(monkeypatch) -> ToyPredictor:
    toy = ToyPredictor(L)
    monkeypatch.setattr("serving.cli.make_predictor", lambda args: toy)
    return toy


def read_tsv(path) -> list[dict]:
    lines = path.read_text().splitlines()
    keys = lines[0].split("\t")
    return [dict(zip(keys, line.split("\t"))) for line in lines[1:]]


STATUS = {"sv1": "symbolic allele <DEL>", "star:*": "spanning deletion", "bnd1": "breakend", "noalt": "no ALT",
          "mismatch": "ref mismatch", "unknown": "'chrZ' is not in", "past": "outside chr2"}


def run(genome, vcf, tmp_path, *extra) -> tuple[int, list[dict]]:
    out = tmp_path / "effects.tsv"
    code = main(["variants", "--genome", str(genome), "--vcf", str(vcf), "-o", str(out), "-q", *extra])
    return code, read_tsv(out)


def test_vcf_rows_per_alt_equal_the_predictor_on_windows_cut_by_hand(genome, seqs, vcf_text, toy, tmp_path):
    vcf = tmp_path / "v.vcf"
    vcf.write_text(vcf_text)
    code, rows = run(genome, vcf, tmp_path, "--chunk", "3")
    assert code == EXIT_REJECTS
    ids = [r["id"] for r in rows]
    assert ids[:3] == [f"rs1:{rows[0]['alt']}", f"rs1:{rows[1]['alt']}", "del1"]  # one row per ALT, in order
    assert len(rows) == 16 and "lowq" in ids  # 14 records, two with two ALTs; FILTER kept without --pass-only
    for r in rows:
        name = r["id"]
        if name in STATUS:
            assert STATUS[name] in r["status"] and r["alt_probability"] == "NA", r
            continue
        assert r["status"] == "ok", r
        chrom = "chr2" if r["chrom"] == "2" else r["chrom"]
        ref_w, alt_w = variant_windows(seqs[chrom], int(r["pos"]) - 1, r["ref"], r["alt"], L)
        want = toy.predict_onehot(encode([ref_w, alt_w]))
        assert float(r["ref_probability"]) == pytest.approx(float(want["probability"][0]), abs=1e-6)
        assert float(r["alt_probability"]) == pytest.approx(float(want["probability"][1]), abs=1e-6)
        assert float(r["delta_logit"]) == pytest.approx(float(want["logit"][1] - want["logit"][0]), abs=1e-5)
    ins = next(r for r in rows if r["id"] == "ins1")
    assert float(ins["delta_probability"]) > 0  # five C inserted


def test_annotated_vcf_reads_back_with_cyvcf2_equal_to_the_tsv(genome, vcf_text, toy, tmp_path):
    from cyvcf2 import VCF

    vcf = tmp_path / "v.vcf"
    vcf.write_text(vcf_text)
    ann = tmp_path / "annotated.vcf.gz"
    code, rows = run(genome, vcf, tmp_path, "--vcf-out", str(ann))
    assert code == EXIT_REJECTS
    assert ann.read_bytes()[12:14] == b"BC"  # bgzip, so tabix/bcftools/IGV can index it
    reader = VCF(str(ann))
    for field in ("BINDCNN_REF_PROB", "BINDCNN_ALT_PROB", "BINDCNN_DELTA_LOGIT"):
        assert reader.get_header_type(field)["Type"] == "Float"
    by_record: dict[tuple, list[dict]] = {}
    for r in rows:
        by_record.setdefault((r["chrom"], r["pos"]), []).append(r)
    n = 0
    for rec in reader:
        n += 1
        mine = by_record[(rec.CHROM, str(rec.POS))]
        alt_p = rec.INFO.get("BINDCNN_ALT_PROB")
        if all(r["alt_probability"] == "NA" for r in mine):
            assert alt_p is None
            continue
        alt_p = np.atleast_1d(np.asarray(alt_p, float))
        dl = np.atleast_1d(np.asarray(rec.INFO.get("BINDCNN_DELTA_LOGIT"), float))
        for k, r in enumerate(mine):
            if r["alt_probability"] == "NA":
                assert np.isnan(alt_p[k])  # '.' for an allele not scored
            else:
                assert alt_p[k] == pytest.approx(float(r["alt_probability"]), rel=1e-5, abs=1e-6)
                assert dl[k] == pytest.approx(float(r["delta_logit"]), rel=1e-5, abs=1e-5)
                assert rec.INFO.get("BINDCNN_REF_PROB") == pytest.approx(float(r["ref_probability"]), abs=1e-6)
        if rec.ID == "rs1":
            assert rec.INFO.get("DP") == 10  # the record's own INFO kept
    assert n == 14


def test_pass_only_bgzip_and_bcf_give_the_same_rows(genome, vcf_text, toy, tmp_path):
    from cyvcf2 import VCF, Writer

    plain = tmp_path / "v.vcf"
    plain.write_text(vcf_text)
    _, rows = run(genome, plain, tmp_path)
    gz = bgzip(plain, tmp_path / "v.vcf.gz")
    assert run(genome, gz, tmp_path)[1] == rows
    bcf = tmp_path / "v.bcf"
    reader = VCF(str(gz))
    reader.add_info_to_header({"ID": "SVTYPE", "Number": "1", "Type": "String", "Description": "sv"})
    writer = Writer(str(bcf), reader, mode="wb")
    for rec in reader:
        writer.write_record(rec)
    writer.close()
    assert run(genome, bcf, tmp_path)[1] == rows
    _, passed = run(genome, plain, tmp_path, "--pass-only")
    assert passed == [r for r in rows if r["id"] != "lowq"]


def test_tsv_variants_on_the_genome_equal_the_old_fasta_form(genome, seqs, toy, tmp_path):
    c1 = seqs["chr1"]
    tsv = tmp_path / "v.tsv"
    tsv.write_text("chrom\tpos\tref\talt\tid\n" + "".join(
        f"chr1\t{p}\t{c1[p - 1]}\t{other(c1[p - 1])}\tv{p}\n" for p in (1, 150, 151, 999, 2000)))
    new, old = tmp_path / "new.tsv", tmp_path / "old.tsv"
    assert main(["variants", "--genome", str(genome), "--variants", str(tsv), "-o", str(new), "-q",
                 "--chunk", "2"]) == 0
    assert main(["variants", "--fasta", str(genome), "--variants", str(tsv), "-o", str(old), "-q"]) == 0
    assert new.read_text() == old.read_text()


def test_variants_arguments_are_checked(genome, vcf_text, toy, tmp_path, capsys):
    vcf = tmp_path / "v.vcf"
    vcf.write_text(vcf_text)
    assert main(["variants", "--genome", str(genome)]) == EXIT_USAGE
    assert main(["variants", "--genome", str(genome), "--fasta", str(genome), "--vcf", str(vcf)]) == EXIT_USAGE
    assert main(["variants", "--fasta", str(genome), "--variants", str(vcf), "--pass-only"]) == EXIT_USAGE
    assert "--pass-only needs" in capsys.readouterr().err
    assert main(["variants", "--genome", str(genome), "--vcf", str(vcf), "--vcf-out", str(tmp_path / "a.bcf"),
                 "-o", str(tmp_path / "e.tsv")]) == EXIT_USAGE
    assert ".vcf.gz" in capsys.readouterr().err


def test_a_window_with_a_non_nucleotide_gets_a_status_the_others_are_scored(toy, tmp_path):
    seq = random_dna(1, 300, 33)[0]
    genome = write_genome(tmp_path / "g", {"c": seq[:150] + "*" + seq[151:]})[0]
    vcf = tmp_path / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"c\t50\tgood\t{seq[49]}\t{other(seq[49])}\t.\t.\t.\n"
                   f"c\t141\tbad\t{seq[140]}\t{other(seq[140])}\t.\t.\t.\n")
    code, rows = run(genome, vcf, tmp_path)
    assert code == EXIT_REJECTS
    assert rows[0]["status"] == "ok" and rows[0]["alt_probability"] != "NA"
    assert "'*'" in rows[1]["status"] and "not a nucleotide" in rows[1]["status"]
