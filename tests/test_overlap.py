"""serving.scoring.overlap: read-ahead keeps order and raises where the serial loop would; write-behind runs calls
in order, one at a time, and close() leaves nothing pending."""
import threading
import time

import pytest

from serving.scoring.overlap import WriteBehind, WriteBetween, read_ahead


def test_read_ahead_keeps_order_and_raises_after_the_items_before():
    def items():
        yield from range(5)
        raise ValueError("bad record 5")

    got = []
    with pytest.raises(ValueError, match="bad record 5"):
        for item in read_ahead(items(), depth=2):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_read_ahead_runs_on_another_thread_and_stops_when_closed():
    produced, threads = [], set()

    def items():
        for i in range(1000):
            threads.add(threading.get_ident())
            produced.append(i)
            yield i

    it = read_ahead(items(), depth=2)
    assert next(it) == 0
    it.close()
    time.sleep(0.5)
    assert threading.get_ident() not in threads
    assert len(produced) <= 5  # it stopped a few items ahead, not at the end


def test_write_behind_runs_in_order_and_reports_errors():
    done = []
    writer = WriteBehind()
    for i in range(20):
        writer.submit(lambda k: (time.sleep(0.001 * (k % 3)), done.append(k)), i)
    writer.close()
    assert done == list(range(20))

    writer = WriteBehind()
    writer.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        writer.submit(lambda: None)  # the previous call's error comes out before the next runs
    writer.close(quiet=True)


def test_write_between_holds_calls_until_asked():
    done = []
    writer = WriteBetween()
    writer.submit(done.append, 1)
    writer.submit(done.append, 2)
    assert done == []
    writer.run_pending()
    assert done == [1, 2]
    writer.submit(lambda: 1 / 0)
    writer.submit(done.append, 3)
    with pytest.raises(ZeroDivisionError):
        writer.close()
    writer.close(quiet=True)  # what was left runs; its errors are dropped when another error is on its way
    assert done == [1, 2, 3]


def test_score_hands_batches_over_and_writes_while_the_model_runs(trained, tmp_path):
    """With the in-process Predictor, score() starts each batch on the model's threads, then reads the next batch
    and writes the rows done on this thread (serving.scoring.score._handed_over): the TSV is the serial loop's, and
    a bad record in a later batch is raised after the rows before it are written."""
    import io

    from serving.dna import random_dna
    from serving.fasta import FastaError
    from serving.predictor import Predictor
    from serving.scoring.inputs import fasta_batches
    from serving.scoring.score import score, score_batches
    from serving.scoring.tsv_text import tsv_rows

    pred = Predictor(trained["dir"], device="cpu")
    length = pred.length
    seqs = random_dna(700, length, seed=3)
    fa = tmp_path / "a.fa"
    fa.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    out, calls = io.StringIO(), []
    real = pred.start_codes
    pred.start_codes = lambda codes, rc=False: calls.append(len(codes)) or real(codes, rc)
    summary = score(pred, fasta_batches(fa, chunk=256), out)
    assert summary.scored == 700 and calls == [256, 256, 188]
    serial = "".join(tsv_rows(b.ids, p, z) for b, p, z, _ in
                     score_batches(pred, fasta_batches(fa, chunk=256), overlap=True))  # another path, same rows
    assert out.getvalue() == serial

    fa.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs[:300])) + ">\nACGT\n")  # an empty header
    out = io.StringIO()
    with pytest.raises(FastaError, match="empty header"):
        score(pred, fasta_batches(fa, chunk=256), out)
    assert out.getvalue().count("\n") == 300  # rows of both batches before the bad record


@pytest.mark.parametrize("device, reads_ahead", [("cpu", False), ("cuda", True)])
def test_score_reads_ahead_where_the_model_runs_elsewhere(toy_predictor, device, reads_ahead):
    """serving.scoring.score.score: on a GPU (or a service) the next batch is read on another thread while the model
    runs (1.7x on an H200, benchmarks/RESULTS-gpu.md); on the CPU, where the model fills the cores, it is not."""
    import io
    import threading

    import numpy as np

    from serving.dna import encode
    from serving.scoring.inputs import Batch
    from serving.scoring.score import score

    toy_predictor.device = device
    readers = []

    def batches():
        for i in range(3):
            readers.append(threading.current_thread().name)
            seqs = ["ACGTACGTCC", "CCCCCCCCCC"]
            yield Batch(first=2 * i, ids=[f"r{2 * i}", f"r{2 * i + 1}"], onehot=encode(seqs, 10))

    out = io.StringIO()
    summary = score(toy_predictor, batches(), out)
    assert summary.scored == 6 and out.getvalue().count("\n") == 6
    assert np.isclose(float(out.getvalue().splitlines()[1].split("\t")[1]), 1.0)  # r1: all C
    assert all((name == "bindcnn-read-ahead") == reads_ahead for name in readers), readers
