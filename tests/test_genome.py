"""serving.genome, serving.intervals and `score --genome --regions`: an indexed FASTA (plain and bgzip, indexes built
with a message) read by interval, chromosome aliases said once, IUPAC codes as N (counted) while uploads stay strict,
BED/narrowPeak regions resized around summit/centre, bad lines rejected with their line number, and scores equal
to the predictor on the same windows cut out by hand."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from serving.cli import EXIT_OK, EXIT_REJECTS, EXIT_USAGE, main
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


def redirect_target(advice: str) -> str:
    """The file a shell command in a message writes to (`... > target`)."""
    m = re.search(r"\|[^|>]*>\s*(\S+?)\)?(?:[\s,;]|$)", advice)
    assert m, f"no `> target` in {advice!r}"
    return m.group(1)


@pytest.mark.parametrize("name", ["hg38.fa.gz", "genome.fasta.gz", "x.gz", "reads.fna.gz"])
def test_plain_gzip_is_refused_with_a_bgzip_command_that_keeps_the_input(genomes, tmp_path, name):
    from serving.fasta import open_bytes
    from tests.genome_files import bgzip

    gz = tmp_path / name
    gz.write_bytes(gzip.compress(genomes[0].read_bytes()))
    with pytest.raises(GenomeError, match="bgzip") as err:
        Genome(gz)
    target = redirect_target(str(err.value))
    assert target != gz.name and f"gunzip -c {gz.name} | bgzip > {target}" in str(err.value)
    with open_bytes(gz) as fh:  # follow the advice as a shell would, in the input's folder
        bgzip_copy = bgzip(_write(tmp_path / "plain.tmp", fh.read()), tmp_path / target)
    assert Genome(bgzip_copy, quiet=True).sizes["chr1"] == 4000 and gzip.decompress(gz.read_bytes())


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


# Every message in the code base that advises a shell command writing a file (`cmd | tool > target`), as
# (module, a test above that triggers it and checks that target is not the input).
ADVICE = {"serving/genome.py": test_plain_gzip_is_refused_with_a_bgzip_command_that_keeps_the_input}


def test_no_advice_writes_over_its_input():
    root = Path(__file__).resolve().parents[1]
    redirect = re.compile(r"[\"'][^\"'\n]*\|\s*[\w.-]+[^\"'\n|]*>\s*\{")  # a string with `| tool ... > {`
    found = {p.relative_to(root).as_posix() for pkg in ("serving", "training")
             for p in (root / pkg).rglob("*.py") if redirect.search(p.read_text())}
    assert found == set(ADVICE), "a new shell advice: add a test that triggers it and checks its `>` target"


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


PIECE1, PIECE2 = 75_549_820, 75_560_000  # records chr13:75549820-75550420 (bedtools getfasta) and a second piece


@pytest.fixture(scope="module")
def pieced(tmp_path_factory) -> tuple:
    """A FASTA holding two pieces of chr13 (named by their place) and a whole chr2: (path, {record: sequence})."""
    p1 = plant(random_dna(1, 600, 14)[0], 300, CS)
    p2 = plant(random_dna(1, 400, 15)[0], 100, CS)
    recs = {f"chr13:{PIECE1}-{PIECE1 + 600}": p1, f"chr13:{PIECE2}-{PIECE2 + 400}": p2,
            "chr2": random_dna(1, 300, 16)[0]}
    return write_genome(tmp_path_factory.mktemp("pieces"), recs)[0], recs


def test_a_record_named_by_its_place_is_that_piece_of_its_chromosome(pieced):
    path, recs = pieced
    p1 = recs[f"chr13:{PIECE1}-{PIECE1 + 600}"]
    genome = Genome(path, quiet=True)
    assert genome.sizes == {"chr13": PIECE2 + 400, "chr2": 300}  # as far as the file holds it
    assert [(s.chrom, s.start, s.end) for s in genome.spans()] == \
        [("chr13", PIECE1, PIECE1 + 600), ("chr13", PIECE2, PIECE2 + 400), ("chr2", 0, 300)]
    assert genome.fetch("chr13", PIECE1 + 80, PIECE1 + 130) == p1[80:130] and genome.resolve("13") == "chr13"
    assert genome.missing("chr13", PIECE1 + 500, PIECE1 + 700).startswith(f"chr13:{PIECE1 + 500}-{PIECE1 + 700} "
                                                                           "is not wholly in the pieces of chr13")
    with pytest.raises(GenomeError, match="not wholly in the pieces"):
        genome.fetch("chr13", 100, 200)
    assert Genome(path, quiet=True, coords="none").sizes == {r: len(s) for r, s in recs.items()}  # ids as names


def test_regions_and_scans_of_a_pieced_chromosome_in_chromosome_coordinates(pieced, tmp_path, monkeypatch):
    import pyBigWig

    path, recs = pieced
    p1 = recs[f"chr13:{PIECE1}-{PIECE1 + 600}"]
    toy = ToyPredictor(L)
    monkeypatch.setattr("serving.cli.make_predictor", lambda args: toy)
    bed = tmp_path / "r.bed"
    bed.write_text(f"chr13\t{PIECE1 + 280}\t{PIECE1 + 340}\tin_piece\n"  # window [PIECE1 + 285, + 335)
                   f"13\t{PIECE1 + 100}\t{PIECE1 + 101}\talias\n"
                   f"chr13\t{PIECE1 + 1000}\t{PIECE1 + 1100}\tbetween_pieces\n"
                   f"chr13\t{PIECE1 + 560}\t{PIECE1 + 600}\twindow_leaves_the_piece\n")
    out = tmp_path / "scores.tsv"
    assert main(["score", "--genome", str(path), "--regions", str(bed), "-o", str(out), "-q"]) == EXIT_REJECTS
    rows = [line.split("\t") for line in out.read_text().splitlines()[1:]]
    assert [r[:4] for r in rows] == [["chr13", str(PIECE1 + 285), str(PIECE1 + 335), "in_piece"],
                                     ["chr13", str(PIECE1 + 75), str(PIECE1 + 125), "alias"]]
    want = toy.predict_onehot(encode([p1[285:335], p1[75:125]]))["probability"]
    np.testing.assert_allclose([float(r[4]) for r in rows], want, rtol=1e-6)
    rejects = (tmp_path / "scores.tsv.rejects.tsv").read_text()
    assert "between_pieces" in rejects and "window_leaves_the_piece" in rejects and "not wholly in" in rejects
    # scan: the genome form writes what the FASTA form writes (records placed by their ids), and a bigWig
    genome_bg, fasta_bg, bw = tmp_path / "g.bedgraph", tmp_path / "f.bedgraph", tmp_path / "g.bw"
    assert main(["scan", "--genome", str(path), "--stride", "7", "--bedgraph", str(genome_bg), "--bigwig", str(bw),
                 "-q"]) == EXIT_OK
    assert main(["scan", str(path), "--stride", "7", "--bedgraph", str(fasta_bg), "-q"]) == EXIT_OK
    assert genome_bg.read_text() == fasta_bg.read_text()
    assert genome_bg.read_text().startswith(f"chr13\t{PIECE1 + 21}\t")
    with pyBigWig.open(str(bw)) as track:
        assert track.chroms() == {"chr13": PIECE2 + 400, "chr2": 300}
        got = track.intervals("chr13")
    bg = [line.split("\t") for line in genome_bg.read_text().splitlines() if line.startswith("chr13")]
    assert [(s, e) for s, e, _ in got] == [(int(r[1]), int(r[2])) for r in bg]
