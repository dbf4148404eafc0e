"""`variants --genome --vcf`: VCF/VCF.gz and (unindexed) BCF read in chunks, one row per ALT (SNVs and indels on
windows cut by hand), symbolic/'*'/breakend/missing ALTs kept with a status, windows off the chromosome reported
(window_off_chromosome) and never shifted, FILTER with --pass-only, the annotated VCF read back with cyvcf2 equal to
the TSV, messages naming the file's own lines (a malformed record: exit 2 after the rows before it), records named
chrom:start-end as pieces of chrom, and --fasta read by interval as --genome is."""
from __future__ import annotations

import numpy as np
import pytest

from serving.cli import EXIT_REJECTS, EXIT_USAGE, main
from serving.dna import encode, random_dna
from serving.scoring.variants import variant_windows
from tests.conftest import ToyPredictor
from tests.genome_files import bgzip, write_genome
from tests.test_engine import copy_without, random_dir  # noqa: F401  (random_dir: a random-weight model folder)

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
            "##contig=<ID=2,length=800>",
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
        f"chr1\t1\tfirst\t{c1[0]}\t{other(c1[0])}\t50\tPASS\t.",  # the centred window runs off the start
        f"chr1\t2000\tlast\t{c1[1999]}\t{other(c1[1999])}\t50\tPASS\t.",  # and off the end
        f"chr1\t21\tedge\t{c1[20]}\t{other(c1[20])}\t50\tPASS\t.",  # window [0, 40): just fits
        f"chr1\t1981\tedge2\t{c1[1980]}\t{other(c1[1980])}\t50\tPASS\t.",  # window [1960, 2000): just fits
        f"2\t101\talias\t{c2[100]}\t{other(c2[100])}\t50\tPASS\t.",  # '2' is chr2
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
          "mismatch": "ref mismatch", "unknown": "'chrZ' is not in", "past": "outside chr2",
          "first": "window_off_chromosome: ", "last": "window_off_chromosome: "}
CODES = {"sv1": "unsupported_allele", "star:*": "unsupported_allele", "bnd1": "unsupported_allele",
         "noalt": "unsupported_allele", "mismatch": "ref_mismatch", "unknown": "unknown_chromosome",
         "past": "outside_chromosome", "first": "window_off_chromosome", "last": "window_off_chromosome"}


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
    assert len(rows) == 18 and "lowq" in ids  # 16 records, two with two ALTs; FILTER kept without --pass-only
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
    assert "chr1:-20-20 is outside chr1" in next(r for r in rows if r["id"] == "first")["status"]


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
        codes = rec.INFO.get("BINDCNN_STATUS").split(",")
        assert codes == [CODES.get(r["id"], "ok") for r in mine]  # every ALT says why it has no score
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
    assert n == 16


def write_bcf(src, dst):
    """dst: a real BCF of the VCF src, as `bcftools view -Ob` writes it (bgzip'd binary, no index)."""
    from cyvcf2 import VCF, Writer

    reader = VCF(str(src))
    reader.add_info_to_header({"ID": "SVTYPE", "Number": "1", "Type": "String", "Description": "sv"})
    writer = Writer(str(dst), reader, mode="wb")
    for rec in reader:
        writer.write_record(rec)
    writer.close()
    return dst


def test_pass_only_bgzip_and_an_unindexed_bcf_give_the_same_rows(genome, vcf_text, toy, tmp_path, capsys):
    from serving.fasta import open_bytes
    from serving.scoring.vcf import count_records, is_bcf

    plain = tmp_path / "v.vcf"
    plain.write_text(vcf_text)
    _, rows = run(genome, plain, tmp_path)
    gz = bgzip(plain, tmp_path / "v.vcf.gz")
    assert run(genome, gz, tmp_path)[1] == rows
    bcf = write_bcf(gz, tmp_path / "calls.bcf")
    with open_bytes(bcf) as fh:
        assert fh.read(5) == b"BCF\x02\x02"  # binary records: not text, as bcftools writes them
    assert not list(tmp_path.glob("calls.bcf.*")) and is_bcf(bcf) and count_records(bcf) is None  # no index
    capsys.readouterr()
    ann = tmp_path / "from_bcf.vcf"
    code, from_bcf = run(genome, bcf, tmp_path, "--vcf-out", str(ann))
    assert code == EXIT_REJECTS and from_bcf == rows
    err = capsys.readouterr().err
    assert "record 9 (mismatch): ref mismatch" in err  # a BCF has no lines: messages count its records
    assert "BINDCNN_STATUS=ref_mismatch" in ann.read_text()
    _, passed = run(genome, plain, tmp_path, "--pass-only")
    assert passed == [r for r in rows if r["id"] != "lowq"]


def test_fasta_is_read_by_interval_like_genome(genome, seqs, toy, tmp_path, capsys):
    import tracemalloc

    c1 = seqs["chr1"]
    tsv = tmp_path / "v.tsv"
    tsv.write_text("chrom\tpos\tref\talt\tid\n" + "".join(
        f"chr1\t{p}\t{c1[p - 1]}\t{other(c1[p - 1])}\tv{p}\n" for p in (1, 150, 151, 999, 2000)))
    new, old = tmp_path / "new.tsv", tmp_path / "old.tsv"
    assert main(["variants", "--genome", str(genome), "--variants", str(tsv), "-o", str(new), "-q",
                 "--chunk", "2"]) == EXIT_REJECTS
    assert main(["variants", "--fasta", str(genome), "--variants", str(tsv), "-o", str(old), "-q"]) == EXIT_REJECTS
    assert new.read_text() == old.read_text()
    rows = read_tsv(new)
    assert [r["status"].split(":")[0] for r in rows] == ["window_off_chromosome", "ok", "ok", "ok",
                                                         "window_off_chromosome"]
    # a reference FASTA without an index: indexed on first use (said so), then read by interval, never whole
    big = random_dna(1, 4_000_000, 35)[0]
    ref = write_genome(tmp_path / "ref", {"chrB": big}, width=80)[0]
    tsv.write_text(f"chrB\t3000001\t{big[3_000_000]}\t{other(big[3_000_000])}\tdeep\n")
    capsys.readouterr()
    tracemalloc.start()
    try:
        assert main(["variants", "--fasta", str(ref), "--variants", str(tsv), "-o", str(old)]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"indexing {ref}" in capsys.readouterr().err and (ref.parent / "genome.fa.fai").exists()
    assert peak < len(big) / 4, f"{peak:,} bytes allocated for a {len(big):,} bp reference"
    assert read_tsv(old)[0]["status"] == "ok"


def test_variants_arguments_are_checked(genome, vcf_text, toy, tmp_path, capsys):
    vcf = tmp_path / "v.vcf"
    vcf.write_text(vcf_text)
    tsv = tmp_path / "v.tsv"
    tsv.write_text("chr1\t100\tA\tC\n")
    assert main(["variants", "--genome", str(genome)]) == EXIT_USAGE
    assert main(["variants", "--genome", str(genome), "--fasta", str(genome), "--vcf", str(vcf)]) == EXIT_USAGE
    assert main(["variants", "--fasta", str(genome), "--variants", str(tsv), "--pass-only"]) == EXIT_USAGE
    assert "--pass-only need a VCF" in capsys.readouterr().err
    assert main(["variants", "--genome", str(genome), "--vcf", str(vcf), "--vcf-out", str(tmp_path / "a.bcf"),
                 "-o", str(tmp_path / "e.tsv")]) == EXIT_USAGE
    assert ".vcf.gz" in capsys.readouterr().err
    before = vcf.read_bytes()
    assert main(["variants", "--genome", str(genome), "--vcf", str(vcf), "--vcf-out", str(vcf),
                 "-o", str(tmp_path / "e.tsv")]) == EXIT_USAGE
    assert "overwrite its input" in capsys.readouterr().err and vcf.read_bytes() == before


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


HEAD_NO_PASS = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]  # no ##FILTER=<ID=PASS>


def test_messages_name_the_files_own_lines(genome, seqs, toy, tmp_path, capsys):
    c1 = seqs["chr1"]
    vcf = tmp_path / "v.vcf"
    vcf.write_text("\n".join(HEAD_NO_PASS + [
        f"chr1\t101\tgood\t{c1[100]}\t{other(c1[100])}\t.\t.\t.",  # line 3
        f"chr1\t201\tbad_ref\t{other(c1[200])}\t{c1[200]}\t.\t.\t.",  # line 4: REF mismatch
        "",  # line 5: a blank line (htslib would crash on it)
        f"chr1\t301\toff\t{c1[300]}\t<DEL>\t.\t.\t.",  # line 6
    ]) + "\n")
    code, rows = run(genome, vcf, tmp_path)
    assert code == EXIT_REJECTS and [r["id"] for r in rows] == ["good", "bad_ref", "off"]
    err = capsys.readouterr().err
    assert "line 4 (bad_ref): ref mismatch" in err and "line 6 (off): symbolic" in err


def malformed_vcf(folder, c1: str):
    """A VCF whose line 8 has POS '10x', after five good records (lines 3-7) and before five more."""
    good = [f"chr1\t{p}\tv{p}\t{c1[p - 1]}\t{other(c1[p - 1])}\t.\tPASS\t." for p in range(101, 106)]
    vcf = folder / "v.vcf"
    vcf.write_text("\n".join(HEAD_NO_PASS + good + ["chr1\t10x\tbroken\tA\tC\t.\tPASS\t."] + good) + "\n")
    return vcf


def test_a_malformed_record_names_its_line_exits_2_and_keeps_the_rows_before(genome, seqs, toy, tmp_path, capsys,
                                                                                engine: str = "local"):
    vcf = malformed_vcf(tmp_path, seqs["chr1"])
    out, ann = tmp_path / "e.tsv", tmp_path / "a.vcf"
    argv = ["variants", "--genome", str(genome), "--vcf", str(vcf), "-o", str(out), "--vcf-out", str(ann), "-q",
            "--chunk", "2"]
    if engine == "ray":
        argv += ["--engine", "ray"]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{vcf}, line 8: POS '10x' is not a number" in err and "htslib" not in err
    assert [r["id"] for r in read_tsv(out)] == [f"v{p}" for p in range(101, 106)]  # all five before it
    assert [ln.split("\t")[2] for ln in ann.read_text().splitlines() if not ln.startswith("#")] == \
        [f"v{p}" for p in range(101, 106)]


def test_windows_off_the_chromosome_get_a_status_and_no_score_never_a_shifted_window(toy):
    from serving.scoring import variants as va

    seq = random_dna(1, 100, 36)[0]

    class Item:
        def __init__(self, pos, alt="A", ref=None, id=""):
            self.pos, self.ref, self.alt, self.id = pos, ref or seq[pos - 1], alt, id

    items = [Item(20), Item(21), Item(81), Item(82), Item(50, ref=seq[49:55], alt=seq[49])]
    vs = va.in_sequence(seq, items, "s", L)  # what the service's /variants does with a request
    rows = va.effect_rows(vs, va.variant_effects(toy, vs))
    assert [r["status"].split(":")[0] for r in rows] == ["window_off_chromosome", "ok", "ok",
                                                         "window_off_chromosome", "ok"]
    assert "ref_probability" not in rows[0] and "delta_logit" not in rows[3]
    assert vs[1].ref_window == seq[0:40] and vs[2].ref_window == seq[60:100]  # centred: the base at index 20
    assert vs[4].alt_window == seq[29:50] + seq[55:74]  # a deletion reads on to fill its window
    with pytest.raises(ValueError, match="not inside"):
        va.variant_windows(seq, 10, seq[10], "A", L)


@pytest.mark.parametrize("name,offset", [("chr13:5000-5600", 5000), ("chr13:5001-5600", 5000)],
                         ids=["bed", "one-based"])
def test_a_record_named_by_its_place_takes_variants_in_chromosome_coordinates(toy, tmp_path, name, offset):
    piece = random_dna(1, 600, 37)[0]
    genome = write_genome(tmp_path / "g", {name: piece, "chr2": random_dna(1, 300, 38)[0]})[0]
    lines = HEAD_NO_PASS + [
        f"chr13\t{offset + 301}\tmid\t{piece[300]}\t{other(piece[300])}\t.\t.\t.",  # inside the piece
        f"13\t{offset + 101}\talias\t{piece[100]}\t{other(piece[100])}\t.\t.\t.",
        f"chr13\t{offset + 5}\tedge\t{piece[4]}\t{other(piece[4])}\t.\t.\t.",  # window runs off the piece
        f"chr13\t{offset - 50}\tbefore\tA\tC\t.\t.\t.",  # chr13, but not in the piece the file holds
        f"chr13\t{offset + 301}\twrong\t{other(piece[300])}\tA\t.\t.\t.",
    ]
    vcf = tmp_path / "v.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    code, rows = run(genome, vcf, tmp_path)
    assert code == EXIT_REJECTS
    by = {r["id"]: r for r in rows}
    assert by["mid"]["chrom"] == "chr13" and by["mid"]["pos"] == str(offset + 301)  # outputs as given
    for vid, p0 in (("mid", 300), ("alias", 100)):
        ref_w, alt_w = variant_windows(piece, p0, piece[p0], other(piece[p0]), L)
        want = toy.predict_onehot(encode([ref_w, alt_w]))
        assert by[vid]["status"] == "ok"
        assert float(by[vid]["delta_logit"]) == pytest.approx(float(want["logit"][1] - want["logit"][0]), abs=1e-5)
    assert by["edge"]["status"].startswith("window_off_chromosome") and f"chr13:{offset - 16}" in by["edge"]["status"]
    assert "not in the genome file" in by["before"]["status"] and name.split(":")[0] in by["before"]["status"]
    assert f"at chr13:{offset + 301}" in by["wrong"]["status"]


@pytest.mark.parametrize("rc", [False, True])
def test_snvs_sharing_a_stretch_go_through_the_engine_with_the_same_rows(random_dir, tmp_path, rc):
    """A dense VCF (two stretches of SNVs a few bases apart, a multi-allelic one and an indel among them, a lone SNV
    far away) scored by a model folder with layers.npz equals the same folder without it (every window scored
    alone) within 1e-5."""
    from serving.scoring import shared_snvs
    from serving.scoring.vcf import place_chunk, VcfInput

    seq = random_dna(1, 3000, 41)[0]
    genome = write_genome(tmp_path / "g", {"c": seq})[0]
    lines = [f"c\t{p}\t.\t{seq[p - 1]}\t{other(seq[p - 1])}\t.\t.\t." for p in range(400, 700, 7)]
    lines.insert(5, f"c\t436\tdel\t{seq[435:438]}\t{seq[435]}\t.\t.\t.")
    lines.insert(9, f"c\t464\tmulti\t{seq[463]}\t{other(seq[463])},{other(other(seq[463]))}\t.\t.\t.")
    lines += [f"c\t{p}\t.\t{seq[p - 1]}\t{other(seq[p - 1])}\t.\t.\t." for p in range(1500, 1600, 3)]  # a second stretch
    lines.append(f"c\t2500\tlone\t{seq[2499]}\t{other(seq[2499])}\t.\t.\t.")
    vcf = tmp_path / "v.vcf"
    vcf.write_text("\n".join(HEAD_NO_PASS + lines) + "\n")
    old = copy_without(random_dir, tmp_path / "old", "layers")
    flags = ["--rc"] if rc else []
    code, rows = run(genome, vcf, tmp_path, "--model", str(random_dir), *flags)
    (tmp_path / "o").mkdir()
    code_old, rows_old = run(genome, vcf, tmp_path / "o", "--model", str(old), *flags)
    assert code == code_old == 0 and len(rows) == len(rows_old) == len(lines) + 1
    for got, want in zip(rows, rows_old):
        assert got["id"] == want["id"] and got["status"] == want["status"] == "ok"
        for key in ("ref_logit", "alt_logit", "delta_logit"):
            assert abs(float(got[key]) - float(want[key])) <= 1e-5 * max(1.0, abs(float(want[key]))), (got, want)
    variants = [v for rec in VcfInput(vcf).records() for v in rec.variants]
    from serving.genome import Genome

    placed = place_chunk(Genome(genome, quiet=True), variants, 200, "ACGT")
    shared = sorted(i for s in placed.shared for i in s.members)
    assert len(placed.shared) == 2 and len(shared) == len(lines) - 1  # the SNVs; not the deletion, not the lone one
    assert all(len(variants[i].ref) == 1 for i in shared) and shared_snvs.MIN_SHARED >= 2
