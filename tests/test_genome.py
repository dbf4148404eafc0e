"""serving.genome, serving.intervals and `score --genome --regions`: an indexed FASTA (plain and bgzip, indexes built
with a message) read by interval, chromosome aliases said once, IUPAC codes as N (counted) while uploads stay strict,
BED/narrowPeak regions resized around summit/centre, bad lines rejected with their line number, and scores equal
to the predictor on the same windows cut out by hand."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from serving.cli import EXIT_REJECTS, EXIT_USAGE, main
from serving.dna import SequenceError, encode, random_dna
from serving.genome import Genome, GenomeError
from serving.intervals import Interval, LineReject, read_intervals
from serving.scoring.genome_regions import score_regions
from tests.conftest import ToyPredictor
from tests.genome_files import plant, write_genome

L = 50
CS = "C" * 20


@pytest.fixture(scope="module")
def seqs() -> dict[str, str]:
    chr1 = plant(random_dna(1, 4000, 11)[0], 1000, CS)
    chr1 = chr1[:2000] + chr1[2000:2100].lower() + chr1[2100:]  # soft-masked
    chr1 = plant(chr1, 3000, "RY")  # IUPAC ambiguity codes
    return {"chr1": chr1, "chr2": random_dna(1, 2500, 12)[0], "chrM": random_dna(1, 300, 13)[0]}


@pytest.fixture(scope="module")
def genomes(tmp_path_factory, seqs):
    return write_genome(tmp_path_factory.mktemp("genome"), seqs)


def by_hand(seq: str) -> str:
    """What the genome reader scores: IUPAC codes as N, case ignored."""
    return "".join("N" if b.upper() in "RYSWKMBDHV" else b for b in seq)


@pytest.mark.parametrize("kind", [0, 1], ids=["plain", "bgzip"])
def test_indexed_access_equals_the_sequences(genomes, seqs, kind, capsys):
    path = genomes[kind]
    genome = Genome(path)
    assert "indexing" in capsys.readouterr().err  # built once, said so
    assert (path.parent / (path.name + ".fai")).exists()
    assert kind == 0 or (path.parent / (path.name + ".gzi")).exists()
    assert genome.sizes == {c: len(s) for c, s in seqs.items()}
    rng = np.random.default_rng(0)
    for _ in range(50):
        chrom = list(seqs)[rng.integers(3)]
        a = int(rng.integers(0, len(seqs[chrom])))
        b = int(rng.integers(a, min(len(seqs[chrom]), a + 3000) + 1))
        assert genome.fetch(chrom, a, b) == seqs[chrom][a:b]
    Genome(path)
    assert "indexing" not in capsys.readouterr().err  # the index is reused
    with pytest.raises(GenomeError, match="outside"):
        genome.fetch("chr2", 2400, 2600)


def test_aliases_resolve_and_are_said_once(genomes, capsys):
    genome = Genome(genomes[0])
    capsys.readouterr()
    assert [genome.resolve(n) for n in ("1", "1", "chr2", "MT", "M", "chrX", "X")] == \
        ["chr1", "chr1", "chr2", "chrM", "chrM", None, None]
    err = capsys.readouterr().err
    assert err.count("'1' is 'chr1'") == 1 and "'MT' is 'chrM'" in err
    assert "chrX" in genome.unknown("chrX") and "chr1" in genome.unknown("chrX")


def test_iupac_codes_encode_as_n_and_are_counted_uploads_stay_strict(genomes, seqs, tmp_path):
    genome = Genome(genomes[0], quiet=True)
    codes = genome.codes("chr1", 2990, 3010)
    assert codes[10] == 4 and codes[11] == 4 and genome.ambiguous == 2
    soft = genome.codes("chr1", 2000, 2100)  # soft-masked bases are bases
    assert (soft < 4).all() and genome.ambiguous == 2
    with pytest.raises(SequenceError, match="position 3"):
        encode([seqs["chr1"][2998:3002] + "A"])  # an upload with R: refused as today
    bad, _ = write_genome(tmp_path, {"c": "ACGTACGT*ACGT"}, name="bad.fa")
    with pytest.raises(SequenceError, match="'\\*' at 0-based position 8"):
        Genome(bad, quiet=True).codes("c", 0, 13)


def test_plain_gzip_is_refused_with_the_bgzip_command(genomes, tmp_path):
    gz = tmp_path / "plain.fa.gz"
    gz.write_bytes(gzip.compress(genomes[0].read_bytes()))
    with pytest.raises(GenomeError, match="bgzip"):
        Genome(gz)


BED = [
    "track name=peaks",
    "chr1\t990\t1030\tpeak_c",  # 2: centre 1010
    "chr1\t100\t200",  # 3: BED3, named by its coordinates
    "chr1\t900\t1300\tnp1\t0\t.\t5.0\t3.0\t2.0\t110",  # 4: narrowPeak summit 900 + 110
    "chr1\t900\t1300\tnp2\t0\t.\t5.0\t3.0\t2.0\t-1",  # 5: no summit: centre 1100
    "1\t2000\t2100\tsoftmasked",  # 6: alias
    "1\t2990\t3010\tiupac",  # 7: alias again (said once), R and Y inside
    "chr2\t2480\t2500\tnear_end",  # 8: window runs off the end
    "chr2\t2400\t2600\tpast_end",  # 9: region past the end
    "chrUn\t1\t100\tunknown",  # 10
    "chr1\tabc\t100",  # 11
    "chr1\t5",  # 12
    "chr1\t10\t60\tnear_start",  # 13: window [10, 60)
    "chrM\t0\t10\tmt_edge",  # 14: window off the start
    "chr1\t900\t1000\tnp3\t0\t.\t1\t1\t1\t500",  # 15: summit outside the peak
    "MT\t100\t200\tmt",  # 16
    "# the end",
]
WINDOWS = {2: ("chr1", 985), 3: ("chr1", 125), 4: ("chr1", 985), 5: ("chr1", 1075), 6: ("chr1", 2025),
           7: ("chr1", 2975), 13: ("chr1", 10), 16: ("chrM", 125)}
REJECTED = {8: "runs off chr2", 9: "past the end of chr2", 10: "'chrUn' is not in", 11: "must be integers",
            12: "at least 3 columns", 14: "runs off chrM", 15: "outside the peak"}


@pytest.fixture
def bed(tmp_path):
    path = tmp_path / "regions.bed"
    path.write_text("\n".join(BED) + "\n")
    return path


def test_bed_and_narrowpeak_lines_resize_or_reject(genomes, bed):
    items = list(read_intervals(bed, Genome(genomes[0], quiet=True), L))
    got = {iv.line: (iv.chrom, iv.start) for iv in items if isinstance(iv, Interval)}
    assert got == WINDOWS
    assert all(iv.end - iv.start == L for iv in items if isinstance(iv, Interval))
    rejects = {r.index + 1: r.reason for r in items if isinstance(r, LineReject)}
    assert set(rejects) == set(REJECTED)
    for line, words in REJECTED.items():
        assert words in rejects[line], (line, rejects[line])
    names = [iv.name for iv in items if isinstance(iv, Interval)]
    assert names[:2] == ["peak_c", "chr1:100-200"]


@pytest.mark.parametrize("kind", [0, 1], ids=["plain", "bgzip"])
def test_score_regions_cli_equals_the_predictor_on_windows_cut_by_hand(genomes, seqs, bed, tmp_path, kind,
                                                                       monkeypatch, capsys):
    toy = ToyPredictor(L)
    monkeypatch.setattr("serving.cli.make_predictor", lambda args: toy)
    out = tmp_path / "scores.tsv"
    code = main(["score", "--genome", str(genomes[kind]), "--regions", str(bed), "-o", str(out)])
    assert code == EXIT_REJECTS
    err = capsys.readouterr().err
    assert err.count("'1' is 'chr1'") == 1 and "2 IUPAC ambiguity code(s)" in err
    lines = out.read_text().splitlines()
    assert lines[0] == "chrom\tstart\tend\tname\tprobability\tlogit"
    rows = [line.split("\t") for line in lines[1:]]
    assert [(r[0], int(r[1])) for r in rows] == list(WINDOWS.values())  # input order
    hand = [by_hand(seqs[c][s : s + L]) for c, s in WINDOWS.values()]
    want = toy.predict_onehot(encode(hand))
    np.testing.assert_allclose([float(r[4]) for r in rows], want["probability"], rtol=1e-6)
    np.testing.assert_allclose([float(r[5]) for r in rows], want["logit"], rtol=1e-6)
    assert float(rows[0][4]) > 0.4  # the planted C run sits in the first window
    rejected = (tmp_path / "scores.tsv.rejects.tsv").read_text().splitlines()
    assert rejected[0] == "line\tid\treason"
    assert [int(r.split("\t")[0]) for r in rejected[1:]] == sorted(REJECTED)


def test_score_regions_on_the_real_predictor_with_rc(genomes, seqs, bed, predictor, tmp_path):
    import io

    out = io.StringIO()
    genome = Genome(genomes[1], quiet=True)
    summary = score_regions(predictor, genome, bed, out, rc=True, chunk=3)
    rows = [line.split("\t") for line in out.getvalue().splitlines()]
    L_real = predictor.length
    for chrom, start, end, _, p, z in rows:
        seq = by_hand(seqs[chrom][int(start) : int(end)])
        assert len(seq) == L_real
        ref = predictor.predict_onehot(encode([seq]), reverse_complement_average=True)
        assert float(p) == pytest.approx(float(ref["probability"][0]), abs=1e-6)
        assert float(z) == pytest.approx(float(ref["logit"][0]), rel=1e-5, abs=1e-5)
    assert summary.scored == len(rows) and summary.rejected + summary.scored == summary.records


def test_score_genome_arguments_are_checked(genomes, bed, monkeypatch, capsys):
    monkeypatch.setattr("serving.cli.make_predictor", lambda args: ToyPredictor(L))
    assert main(["score", "--genome", str(genomes[0])]) == EXIT_USAGE
    assert "--regions" in capsys.readouterr().err
    assert main(["score", "--regions", str(bed)]) == EXIT_USAGE
    assert main(["score", str(bed), "--genome", str(genomes[0]), "--regions", str(bed)]) == EXIT_USAGE
    assert main(["score", "--genome", "/nonexistent.fa", "--regions", str(bed)]) == EXIT_USAGE
    assert "no such file" in capsys.readouterr().err


def test_progress_shows_an_eta_when_the_total_is_known():
    import io

    from serving.console import Progress, clock

    stream = io.StringIO()
    progress = Progress("scanning", total=1000, unit="windows", enabled=True, stream=stream, every=0)
    progress.update(250)
    assert "25.0%" in stream.getvalue() and "ETA" in stream.getvalue()
    progress.close()
    assert "ETA" not in stream.getvalue().rsplit("\r", 1)[-1]  # the final line says what it took
    assert [clock(s) for s in (5, 65, 3720)] == ["5 s", "1m05s", "1h02m"]
