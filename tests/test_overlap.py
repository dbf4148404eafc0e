"""serving.scoring.overlap: read-ahead keeps order and raises where the serial loop would; write-behind runs calls
in order, one at a time, and close() leaves nothing pending."""
import threading
import time

import pytest

from serving.scoring.overlap import WriteBehind, read_ahead


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
