"""`scan --genome`: whole genome / --chroms / --regions streamed in tiles (L - stride overlap) with the same scores,
bins and sites as scanning each chromosome whole, and a bigWig whose intervals and values equal the bedGraph."""
from __future__ import annotations

import numpy as np
import pytest

from serving.cli import EXIT_OK, EXIT_REJECTS, EXIT_USAGE, main
from serving.dna import random_dna
from serving.genome import Genome
from serving.intervals import Interval
from serving.scoring import genome_scan as gs
from serving.scoring.scan import call_sites, scan_sequence
from tests.conftest import ToyPredictor
from tests.genome_files import plant, write_genome

L = 10


@pytest.fixture(scope="module")
def seqs() -> dict[str, str]:
    chr1 = random_dna(1, 3000, 21)[0]
    for at in (500, 1200, 1207, 2990):  # C runs: the toy predictor's sites (two of them touch, one at the end)
        chr1 = plant(chr1, at, "C" * 10)
    return {"chr1": chr1, "chr2": plant(random_dna(1, 1517, 22)[0], 3, "CCCCCCCCCC"), "tiny": "ACGTA"}


@pytest.fixture(scope="module")
def genome_path(tmp_path_factory, seqs):
    return write_genome(tmp_path_factory.mktemp("scan"), seqs, width=70)[1]  # bgzip


@pytest.fixture
def toy(monkeypatch) -> ToyPredictor:
    toy = ToyPredictor(L)
    monkeypatch.setattr("serving.cli.make_predictor", lambda args: toy)
    monkeypatch.setattr(gs, "TILE_BP", 97)  # many tiles per chromosome
    return toy


@pytest.mark.parametrize("stride", [1, 3, 10, 13])
def test_tiles_cover_every_window_once(genome_path, stride):
    genome = Genome(genome_path, quiet=True)
    spans = [Interval("chr1", 0, 3000), Interval("chr2", 100, 1517)]
    tiles = list(gs.plan_tiles(spans, genome, L, stride, tile_bp=64))
    assert len(tiles) > 10
    for span in spans:
        starts = np.concatenate([t.start + np.arange(t.windows) * stride for t in tiles if t.chrom == span.chrom])
        np.testing.assert_array_equal(starts, span.start + np.arange((span.end - span.start - L) // stride + 1)
                                      * stride)
    assert all(t.end(L, stride) <= genome.sizes[t.chrom] for t in tiles)


@pytest.mark.parametrize("stride", [1, 4])
def test_tiled_scan_equals_scanning_each_chromosome_whole(genome_path, seqs, stride):
    toy, genome = ToyPredictor(L), Genome(genome_path, quiet=True)
    spans = gs.whole_chromosomes(genome, ["1", "chr2"])
    results = list(gs.scan_genome(toy, genome, spans, stride, tile_bp=50))
    for threshold in (0.5, 0.95):
        stream = gs.SiteStream(threshold)
        sites = [s for r in results for s in stream.add(r)] + stream.flush()
        for chrom in ("chr1", "chr2"):
            whole = scan_sequence(toy, seqs[chrom], stride, rid=chrom)
            parts = [r for r in results if r.id == chrom]
            np.testing.assert_array_equal(np.concatenate([r.starts for r in parts]), whole.starts)
            np.testing.assert_array_equal(np.concatenate([r.probability for r in parts]), whole.probability)
            assert [s for s in sites if s["chrom"] == chrom] == call_sites(whole, threshold)
    if stride == 1:  # the all-C windows: 500, 1200-1207 (touching runs merge across tiles), the last one
        found = [(s["start"], s["end"]) for s in sites if s["chrom"] == "chr1"]
        assert len(found) == 3  # (a C in the random flank may widen a site by a base)
        assert all(a <= lo and hi <= b for (a, b), (lo, hi) in zip(found, [(500, 510), (1200, 1217), (2990, 3000)]))


def read_bedgraph(path) -> list[tuple[str, int, int, str]]:
    rows = [line.split("\t") for line in path.read_text().splitlines() if not line.startswith("track")]
    return [(c, int(a), int(b), v) for c, a, b, v in rows]


@pytest.mark.parametrize("stride", [1, 3, 25])
def test_whole_genome_bigwig_equals_the_bedgraph(genome_path, seqs, toy, tmp_path, stride, capsys):
    import pyBigWig

    bg, bw, bed = tmp_path / "s.bedGraph", tmp_path / "s.bw", tmp_path / "sites.bed"
    code = main(["scan", "--genome", str(genome_path), "--stride", str(stride), "--bigwig", str(bw),
                 "--bedgraph", str(bg), "--bed", str(bed), "--threshold", "0.5"])
    assert code == EXIT_OK
    assert "shorter than the model's 10 bp not scanned: tiny:0-5" in capsys.readouterr().err
    rows = read_bedgraph(bg)
    with pyBigWig.open(str(bw)) as track:
        assert track.chroms() == {c: len(s) for c, s in seqs.items()}  # sizes from the index
        got = [(c, a, b, v) for c in ("chr1", "chr2") for a, b, v in (track.intervals(c) or [])]
    assert [(c, a, b) for c, a, b, _ in got] == [(c, a, b) for c, a, b, _ in rows]
    assert all(f"{v:.6g}" == text or abs(v - float(text)) < 1e-6 for (*_, v), (*_, text) in zip(got, rows))
    assert len(rows) == sum((len(seqs[c]) - L) // stride + 1 for c in ("chr1", "chr2"))
    whole = scan_sequence(ToyPredictor(L), seqs["chr1"], stride, rid="chr1")
    want = [(s["chrom"], s["start"], s["end"]) for s in call_sites(whole, 0.5)]
    got_sites = [tuple(line.split("\t")[:3]) for line in bed.read_text().splitlines()]
    assert [(c, int(a), int(b)) for c, a, b in got_sites if c == "chr1"] == want


def test_chroms_and_regions_limit_the_scan(genome_path, seqs, toy, tmp_path, capsys):
    bg = tmp_path / "chr2.bedGraph"
    assert main(["scan", "--genome", str(genome_path), "--chroms", "2", "--bedgraph", str(bg)]) == EXIT_OK
    assert {c for c, *_ in read_bedgraph(bg)} == {"chr2"}
    regions = tmp_path / "r.bed"
    regions.write_text("chr1\t100\t300\ta\nchr1\t250\t400\tb\nchr2\t50\t52\tshort\nchrZ\t1\t50\tz\n"
                       "chr1\t1190\t1230\tc\n")
    bg2 = tmp_path / "regions.bedGraph"
    code = main(["scan", "--genome", str(genome_path), "--regions", str(regions), "--bedgraph", str(bg2)])
    assert code == EXIT_REJECTS and "chrZ" in capsys.readouterr().err
    rows = read_bedgraph(bg2)
    starts = {(c, a - (L - 1) // 2) for c, a, _, _ in rows}  # stride 1: bin = window start + (L - 1) // 2
    assert starts == {("chr1", s) for s in range(100, 400 - L + 1)} | \
        {("chr1", s) for s in range(1190, 1230 - L + 1)} | {("chr2", s) for s in range(46, 47)}
    assert rows == sorted(rows, key=lambda r: (r[0], r[1]))  # genome order: a track never goes back


def test_scan_genome_arguments_are_checked(genome_path, toy, tmp_path, capsys):
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t0\t100\n")
    assert main(["scan", "--genome", str(genome_path), "--regions", str(bed), "--chroms", "chr1"]) == EXIT_USAGE
    assert main(["scan", "--genome", str(genome_path), "--chroms", "chrQ"]) == EXIT_USAGE
    assert "'chrQ' is not in" in capsys.readouterr().err
    fa = tmp_path / "x.fa"
    fa.write_text(">a\nACGTACGTACGTACGT\n")
    assert main(["scan", str(fa), "--bigwig", str(tmp_path / "x.bw")]) == EXIT_USAGE
    assert "--bigwig needs --genome" in capsys.readouterr().err


def test_score_scan_spelling_scans_the_genome_too(genome_path, toy, tmp_path):
    a, b = tmp_path / "a.bedGraph", tmp_path / "b.bedGraph"
    assert main(["score", "--scan", "--genome", str(genome_path), "--stride", "7", "--bedgraph", str(a)]) == EXIT_OK
    assert main(["scan", "--genome", str(genome_path), "--stride", "7", "--bedgraph", str(b)]) == EXIT_OK
    assert a.read_text() == b.read_text() and a.stat().st_size > 0


def test_a_large_track_is_written_without_zoom_levels_and_the_same_values(genome_path, toy, tmp_path,
                                                                          monkeypatch, capsys):
    import pyBigWig

    from serving.scoring import bigwig

    small, large = tmp_path / "zoomed.bw", tmp_path / "flat.bw"
    assert main(["scan", "--genome", str(genome_path), "--bigwig", str(small)]) == EXIT_OK
    monkeypatch.setattr(bigwig, "ZOOM_MAX_INTERVALS", 100)  # as if the track were genome-sized
    assert main(["scan", "--genome", str(genome_path), "--bigwig", str(large)]) == EXIT_OK
    assert "without zoom levels" in capsys.readouterr().err
    with pyBigWig.open(str(small)) as a, pyBigWig.open(str(large)) as b:
        assert a.header()["nLevels"] > 0 and b.header()["nLevels"] == 0
        assert a.intervals("chr1") == b.intervals("chr1") and a.intervals("chr2") == b.intervals("chr2")
