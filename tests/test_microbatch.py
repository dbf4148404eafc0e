"""serving.service.microbatch: requests queued together share one call, each gets its own rows back in order,
batches respect max_rows, and a failing call fails only the requests in it."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from serving.service.microbatch import MicroBatcher


class Model:
    """run(x: (N, 2)) -> {'sum': (N,)} recording each call's row count; fails on a row holding -1."""

    def __init__(self):
        self.calls: list[int] = []

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        if (x == -1).any():
            raise ValueError("bad row")
        self.calls.append(len(x))
        return {"sum": x.sum(axis=1)}


def rows(*values: float) -> np.ndarray:
    return np.array([[v, v] for v in values], np.float32)


def test_concurrent_requests_share_one_call_in_order():
    model, sizes = Model(), []
    batcher = MicroBatcher(model, max_rows=256, on_batch=sizes.append)

    async def main():
        return await asyncio.gather(*(batcher.submit(rows(*range(10 * i, 10 * i + i + 1))) for i in range(5)))

    outs = asyncio.run(main())
    assert model.calls == [15] and sizes == [15]  # 1 + 2 + ... + 5 rows, one call
    for i, out in enumerate(outs):
        np.testing.assert_array_equal(out["sum"], 2 * np.arange(10 * i, 10 * i + i + 1, dtype=np.float32))


def test_max_rows_splits_batches_and_a_large_request_runs_alone():
    model = Model()
    batcher = MicroBatcher(model, max_rows=4)

    async def main():
        return await asyncio.gather(batcher.submit(rows(1, 2, 3)), batcher.submit(rows(4, 5)),
                                    batcher.submit(rows(*range(6))), batcher.submit(rows(7)))

    outs = asyncio.run(main())
    assert model.calls == [3, 2, 6, 1]
    assert [len(o["sum"]) for o in outs] == [3, 2, 6, 1]


def test_sequential_requests_each_run_at_once():
    model = Model()
    batcher = MicroBatcher(model)

    async def main():
        return [(await batcher.submit(rows(i)))["sum"][0] for i in range(3)]

    assert asyncio.run(main()) == [0, 2, 4] and model.calls == [1, 1, 1]


def test_a_failing_call_fails_its_requests_only():
    model = Model()
    batcher = MicroBatcher(model, max_rows=2)

    async def main():
        return await asyncio.gather(batcher.submit(rows(1)), batcher.submit(rows(-1)), batcher.submit(rows(3, 4)),
                                    return_exceptions=True)

    first, second, third = asyncio.run(main())
    assert isinstance(first, ValueError) and isinstance(second, ValueError)  # same call
    np.testing.assert_array_equal(third["sum"], [6, 8])  # the next call still runs
    with pytest.raises(ValueError):
        asyncio.run(MicroBatcher(model).submit(rows(-1)))


def test_frozen_signatures_spare_bentoml_the_work_per_request(monkeypatch):
    """serving.service.signatures: after freeze(), reaching an API on an instance (what BentoML does per request)
    no longer inspects the function, and the signature it sees is unchanged."""
    import inspect

    import bentoml

    from serving.service import signatures

    @bentoml.service
    class Tiny:
        @bentoml.api
        def echo(self, text: str, times: int = 2) -> str:
            return text * times

    before = str(inspect.signature(Tiny.apis["echo"].func))
    assert signatures.freeze(Tiny) == 1 and signatures.freeze(Tiny) == 0
    calls = []
    real = inspect._signature_from_function
    monkeypatch.setattr(inspect, "_signature_from_function", lambda *a, **k: calls.append(1) or real(*a, **k))
    instance = Tiny.inner()
    assert instance.echo("ab") == "abab" and instance.echo("c", times=3) == "ccc"
    assert calls == [] and str(inspect.signature(Tiny.apis["echo"].func)) == before
