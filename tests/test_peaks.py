"""`bindcnn peaks` on a small genome made here, with CTCF instances planted at the summits of its narrowPeak file:
summit positives, GC-matched peak-free negatives, shuffles, a chromosome split, the notebook's layout."""
import numpy as np
import pytest

from training.cli import EXIT_BAD_INPUT, main

CHROMS = {"chr1": 150_000, "chr2": 120_000, "chr3": 80_000, "chr4": 80_000}
HALF = 150  # peaks are summit +- 150


@pytest.fixture(scope="module")
def genome_and_peaks(tmp_path_factory):
    """A genome whose GC changes every 5 kb (0.3-0.6); peaks sit in the GC-rich blocks with an MA0139.1 instance
    at their summit, so unmatched random windows would be AT-richer than the positives."""
    from serving.fasta import write_fasta
    from training.datasets.jaspar import load_jaspar, motif_probabilities

    rng = np.random.default_rng(5)
    pwm = motif_probabilities(load_jaspar()[1])
    root = tmp_path_factory.mktemp("genome")
    records, peaks = [], []
    for chrom, size in CHROMS.items():
        gc = np.repeat(rng.uniform(0.3, 0.6, size // 5000 + 1), 5000)[:size]
        p = np.stack([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2], axis=1).cumsum(axis=1)
        codes = (rng.random((size, 1)) > p).sum(axis=1)
        rich = np.flatnonzero(gc > 0.45)
        summits = np.sort(rng.choice(rich[(rich > 1000) & (rich < size - 1000)], 40, replace=False))
        summits = summits[np.r_[True, np.diff(summits) > 2 * HALF]]
        for k, s in enumerate(summits):
            site = (rng.random((19, 1)) > pwm.cumsum(axis=1)).sum(axis=1)
            codes[s - 9:s + 10] = site if rng.random() < 0.5 else (3 - site)[::-1]
            peaks.append(f"{chrom}\t{s - HALF}\t{s + HALF}\tpeak_{chrom}_{k}\t100\t.\t5.0\t10.0\t8.0\t{HALF}")
        records.append((chrom, "".join("ACGT"[c] for c in codes)))
    write_fasta(records, root / "small.fa", width=60)
    peaks.append(f"chrUn\t100\t400\tlost\t100\t.\t5.0\t10.0\t8.0\t{HALF}")  # not in the genome: skipped
    (root / "peaks.narrowPeak").write_text("\n".join(peaks) + "\n")
    return root / "small.fa", root / "peaks.narrowPeak"


def test_peaks_builds_a_gc_matched_chromosome_split_dataset(genome_and_peaks, tmp_path, capsys):
    from serving.genome import Genome
    from training.baseline import best_match_position
    from training.datasets import load_h5

    fa, peaks = genome_and_peaks
    out = tmp_path / "mine.h5"
    assert main(["peaks", "--peaks", str(peaks), "--genome", str(fa), "--out", str(out), "--valid-chroms", "chr3",
                 "--test-chroms", "chr4", "--shuffles", "1"]) == 0
    err = capsys.readouterr().err
    assert "lost" in err and "chrUn" in err  # the skipped line is named
    ds = load_h5(out)  # what `train --data` reads
    assert ds.length == 200
    rows = [line.split("\t") for line in (tmp_path / "mine.h5.windows.bed").read_text().splitlines()]
    n_peaks = sum(1 for line in peaks.read_text().splitlines() if not line.startswith("chrUn"))
    assert sum(r[3] == "summit" for r in rows) == n_peaks
    assert sum(r[3] == "genomic" for r in rows) == n_peaks and sum(r[3] == "shuffle" for r in rows) == n_peaks
    for split, chroms in (("train", {"chr1", "chr2"}), ("valid", {"chr3"}), ("test", {"chr4"})):
        mine = [r for r in rows if r[5] == split]
        assert {r[0] for r in mine} <= chroms and len(mine) == len(ds.y[split])
        labels = np.array([int(r[4]) for r in sorted(mine, key=lambda r: int(r[6]))])
        np.testing.assert_array_equal(labels, ds.y[split][:, 0])  # the BED's rows are the h5's rows
    spans = [(line.split("\t")[0], int(line.split("\t")[1]), int(line.split("\t")[2]))
             for line in peaks.read_text().splitlines()]
    for chrom, start, end, kind, *_ in rows:
        start, end = int(start), int(end)
        if kind == "genomic":
            assert not any(c == chrom and s < end and start < e for c, s, e in spans)
        if kind == "summit":
            assert any(c == chrom and s + HALF == start + 100 for c, s, e in spans)
    x = np.concatenate([ds.x[s] for s in ds.x])
    y = np.concatenate([ds.y[s][:, 0] for s in ds.y])
    labels_kind = np.concatenate([[r[3] for r in sorted((r for r in rows if r[5] == s), key=lambda r: int(r[6]))]
                                  for s in ("train", "valid", "test")])
    gc = x[:, :, 1:3].sum(axis=(1, 2)) / 200
    genomic = labels_kind == "genomic"
    assert abs(gc[y == 1].mean() - gc[genomic].mean()) < 0.02  # matched ...
    genome = Genome(fa)
    random_gc = np.mean([np.isin(genome.codes("chr1", s, s + 200), (1, 2)).mean()
                         for s in range(0, 140_000, 997)])
    assert gc[y == 1].mean() - random_gc > 0.04  # ... where unmatched windows would not be
    found = best_match_position(x[y == 1])
    assert np.mean(np.abs(found[:, 0] - 91) <= 1) > 0.8  # the planted instance sits at the summit


def test_peaks_errors_say_what_to_do(genome_and_peaks, tmp_path, capsys):
    fa, peaks = genome_and_peaks
    assert main(["peaks", "--peaks", str(peaks), "--genome", str(fa), "--out", str(tmp_path / "a.h5")]) \
        == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "chromosome 'chr7' is not in small.fa" in err and "--valid-chroms" in err
    assert main(["peaks", "--peaks", str(peaks), "--genome", str(fa), "--out", str(tmp_path / "b.h5"),
                 "--valid-chroms", "chr3", "--test-chroms", "chr3"]) == EXIT_BAD_INPUT
    assert "both a validation and a test chromosome" in capsys.readouterr().err
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "b.h5").exists()
