"""serving.scoring.scan: window counts, windows as views, scores equal to scoring each window alone, padding,
reverse-complement averaging, and bedGraph/BED coordinates at both edges (plain and chrom:start-end ids)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from serving.scoring import outputs, scan
from serving.scoring.regions import Region, parse_region
from serving.cli import EXIT_OK, EXIT_REJECTS, main
from serving.dna import SequenceError, encode, encode_one, reverse_complement
from serving.dna import random_dna
from serving.fasta import write_fasta
from tests.conftest import ToyPredictor


def random_seq(n: int, seed: int) -> str:
    return random_dna(1, n, seed)[0]



@pytest.mark.parametrize("n,stride", [(10, 1), (11, 1), (57, 1), (57, 4), (57, 47), (57, 48), (57, 100)])
def test_window_count_and_starts(n, stride):
    res = scan.scan_sequence(ToyPredictor(), "A" * n, stride=stride)
    expected = (n - 10) // stride + 1
    assert scan.n_windows(n, 10, stride) == expected == len(res.probability)
    np.testing.assert_array_equal(res.starts, np.arange(expected) * stride)
    assert res.starts[-1] + 10 <= n


def test_windows_are_views_of_one_array():
    x = encode_one(random_seq(500, 1))
    view = scan.windows(x, 200, stride=3)
    assert view.shape == ((500 - 200) // 3 + 1, 200, 4)
    assert np.shares_memory(view, x) and not view.flags.owndata
    np.testing.assert_array_equal(view[7], x[21:221])


def test_scores_equal_scoring_each_window_alone(predictor):
    seq = random_seq(900, 2)
    for stride in (1, 7):
        res = scan.scan_sequence(predictor, seq, stride=stride, batch_size=256)
        alone = predictor.predict_sequences([seq[s : s + 200] for s in res.starts])
        np.testing.assert_allclose(res.probability, alone["probability"], atol=1e-6)
        np.testing.assert_allclose(res.logit, alone["logit"], rtol=1e-6, atol=1e-6)


def test_segments_and_batches_do_not_change_the_result(predictor, monkeypatch):
    seq = random_seq(1500, 3)
    whole = scan.scan_sequence(predictor, seq, stride=2)
    monkeypatch.setattr(scan, "SEGMENT_BP", 333)  # several one-hot segments
    toy = ToyPredictor()
    parts = scan.scan_sequence(predictor, seq, stride=2, batch_size=50)
    np.testing.assert_array_equal(parts.starts, whole.starts)
    np.testing.assert_allclose(parts.logit, whole.logit, rtol=1e-6, atol=1e-6)
    scan.scan_sequence(toy, seq, stride=2, batch_size=50)
    assert max(toy.batches) <= 50


def test_reverse_complement_averaging(predictor):
    seq = random_seq(400, 4)
    res = scan.scan_sequence(predictor, seq, stride=5, rc=True)
    x = encode([seq[s : s + 200] for s in res.starts])
    fwd = predictor.predict_onehot(x)["logit"]
    rev = predictor.predict_onehot(np.ascontiguousarray(reverse_complement(x)))["logit"]
    np.testing.assert_allclose(res.logit, (fwd + rev) / 2, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(res.probability, 1 / (1 + np.exp(-(fwd + rev) / 2)), atol=1e-6)


def test_short_sequences_pad_with_n_or_reject(predictor):
    seq = random_seq(150, 5)
    with pytest.raises(SequenceError, match="length 150 is shorter than the model's window 200"):
        scan.scan_sequence(predictor, seq)
    res = scan.scan_sequence(predictor, seq, short="pad")
    padded = "N" * 25 + seq + "N" * 25  # centred: left pad (200 - 150) // 2
    np.testing.assert_allclose(res.probability, predictor.predict_sequences([padded])["probability"], atol=1e-6)
    lo, hi = res.bins()
    assert (lo.tolist(), hi.tolist()) == ([0], [150])  # reported on the whole record
    with pytest.raises(SequenceError, match="invalid character 'X' at position 3"):
        scan.scan_sequence(predictor, "ACX" + seq, index=0)


def test_parse_region_conventions():
    assert parse_region("chr1:1000-5000", 4000) == Region("chr1", 1000)  # bedtools getfasta
    assert parse_region("chr1:1001-5000", 4000) == Region("chr1", 1000)  # samtools faidx, 1-based
    assert parse_region("chr1:1,001-5,000", 4000, "one-based") == Region("chr1", 1000)
    odd = parse_region("chr1:1000-9000", 4000)
    assert odd.chrom == "chr1:1000-9000" and odd.offset == 0 and "does not match" in odd.note
    assert parse_region("chr1:1000-5000", 4000, "none") == Region("chr1:1000-5000")
    assert parse_region("seq7", 50) == Region("seq7")


@pytest.mark.parametrize("rid,chrom,offset", [("plain", "plain", 0), ("chr2:1000-1050", "chr2", 1000),
                                              ("chr2:1001-1050", "chr2", 1000)])
def test_bedgraph_and_bed_coordinates_at_both_edges(rid, chrom, offset):
    # 50 bp; C-rich at the very start (0-12) and the very end (40-50), window 10
    seq = "C" * 12 + "A" * 28 + "C" * 10
    res = scan.scan_sequence(ToyPredictor(), seq, stride=1, rid=rid)
    region = parse_region(rid, len(seq))
    assert (region.chrom, region.offset) == (chrom, offset)
    bg, bed = io.StringIO(), io.StringIO()
    outputs.write_bedgraph(bg, res, region)
    outputs.write_bed(bed, res, region, threshold=0.5)
    rows = [line.split("\t") for line in bg.getvalue().splitlines()]
    starts, ends = [int(r[1]) for r in rows], [int(r[2]) for r in rows]
    assert len(rows) == 41 and {r[0] for r in rows} == {chrom}
    assert starts[0] == offset + 4 and ends[-1] == offset + 40 + 5  # centre bp of the first / last window
    assert starts[1:] == ends[:-1]  # contiguous, never overlapping
    assert float(rows[0][3]) == 1.0 and float(rows[-1][3]) == 1.0
    sites = [line.split("\t") for line in bed.getvalue().splitlines()]
    # windows >= 0.5: starts 0..7 (C fraction >= 5/10) -> [0, 17); starts 35..40 -> [35, 50)
    assert [(s[0], int(s[1]), int(s[2])) for s in sites] == [(chrom, offset + 0, offset + 17),
                                                             (chrom, offset + 35, offset + 50)]
    assert [(s[3], s[4], s[5]) for s in sites] == [("1.0000", "1000", "."), ("1.0000", "1000", ".")]


def test_stride_bins_tile_and_overlapping_calls_merge():
    seq = "A" * 20 + "C" * 6 + "A" * 34  # 60 bp
    res = scan.scan_sequence(ToyPredictor(), seq, stride=4)
    lo, hi = res.bins()
    assert (hi - lo).tolist() == [4] * len(lo) and lo[1:].tolist() == hi[:-1].tolist() and lo[0] == 3
    sites = scan.call_sites(res, threshold=0.3)
    # windows starting 16..24 (step 4) hold >= 3 Cs: 16 -> 4 C, 20 -> 6 C, 24 -> 2 C (not called)
    assert [(s["start"], s["end"], s["probability"], s["logit"]) for s in sites] == \
        [(16, 30, pytest.approx(0.6), pytest.approx(6.0))]


def test_cli_scan_writes_valid_bedgraph_and_bed(trained, tmp_path):
    fa = tmp_path / "long.fa"
    write_fasta([("chr5:2000-2700", random_seq(700, 6)), ("contig9", random_seq(450, 7)), ("tiny", "ACGT" * 10)], fa)
    bg, bed, win = tmp_path / "o.bedGraph", tmp_path / "o.bed", tmp_path / "win.tsv"
    code = main(["score", str(fa), "--scan", "--stride", "5", "--model", str(trained["dir"]), "--bedgraph", str(bg),
                 "--bed", str(bed), "--threshold", "0.2", "-o", str(win), "--track-line", "ctcf", "-q"])
    assert code == EXIT_REJECTS  # "tiny" is shorter than 200 and --short is reject
    assert "tiny" in Path(f"{win}.rejects.tsv").read_text()
    lines = bg.read_text().splitlines()
    assert lines[0].startswith('track type=bedGraph name="ctcf"')
    rows = [line.split("\t") for line in lines[1:]]
    assert {r[0] for r in rows} == {"chr5", "contig9"}
    assert len(rows) == (700 - 200) // 5 + 1 + (450 - 200) // 5 + 1
    for chrom, lo_edge, hi_edge in (("chr5", 2000, 2700), ("contig9", 0, 450)):
        mine = [(int(r[1]), int(r[2])) for r in rows if r[0] == chrom]
        assert all(lo_edge <= a < b <= hi_edge for a, b in mine)
        assert all(b == a2 for (_, b), (a2, _) in zip(mine, mine[1:]))
    for r in rows:
        assert 0.0 <= float(r[3]) <= 1.0
    beds = [line.split("\t") for line in bed.read_text().splitlines()[1:]]
    for b in beds:
        assert len(b) == 6 and 0 <= int(b[4]) <= 1000 and int(b[1]) < int(b[2]) and b[5] == "."
        assert int(b[4]) == round(1000 * float(b[3]))
    w = [line.split("\t") for line in win.read_text().splitlines()]
    assert w[0] == ["chrom", "start", "end", "probability", "logit"]
    assert (w[1][:3], w[101][:3]) == (["chr5", "2000", "2200"], ["chr5", "2500", "2700"])
    pad = tmp_path / "pad.bedGraph"
    assert main(["score", str(fa), "--scan", "--short", "pad", "--stride", "50", "--model", str(trained["dir"]),
                 "--bedgraph", str(pad), "-q"]) == EXIT_OK
    assert pad.read_text().splitlines()[-1].split("\t")[:3] == ["tiny", "0", "40"]
