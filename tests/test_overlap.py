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
