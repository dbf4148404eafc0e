"""The Ray engine (`--engine ray`): the local engine's units of work (region chunks, scan tiles, variant chunks) run
in a pool of Ray actors on this machine or a cluster, results back in input order for the local engine's writers.

Work items are small descriptors (Intervals, Tiles, Variants). One pool per command: its actors start on first use,
each loads one predictor and opens the genome once, then reads it by interval (the genome and the model must be at
the same path on every node). Items stream through the pool, IN_FLIGHT per actor, so the driver holds O(actors)
items and results whatever the input's size.
"""
from __future__ import annotations

import functools
import logging
import os
import pickle
import sys
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

INSTALL = "pip install 'bindcnn[distributed]'"
IN_FLIGHT = 2  # work items sent ahead per actor: the next is there when one ends; bounds the driver's memory
PROBE_S = 5.0  # seconds for each step of the address check (TCP connect, then a gRPC call): ~10 s at worst
GRPC_HEALTH = "/grpc.health.v1.Health/Check"  # the standard gRPC health method (Ray's GCS serves it)
_END = object()  # the input has no more items


def require_ray():
    """The ray module (Ray Core: actors, ray.wait, ray.kill), or ValueError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"--engine ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def check_args(args) -> None:
    """Refuse what the Ray engine cannot do, before any model loads (ValueError: exit 2)."""
    require_ray()
    if not getattr(args, "genome", None):
        raise ValueError("--engine ray runs the genome forms: score --genome --regions, scan --genome, variants "
                         "--genome; FASTA input is scored here (--engine local)")
    if getattr(args, "url", None):
        raise ValueError("--engine ray loads the model in its Ray actors (--model); it does not call a service "
                         "(--url)")
    check_address(getattr(args, "ray_address", None) or os.environ.get("RAY_ADDRESS"))


def check_address(address: str | None) -> None:
    """Refuse within ~2 x PROBE_S an address where no Ray answers (ValueError naming it: exit 2), not ray.init's
    minutes of retries: a TCP connection, then the gRPC health method (a Ray GCS answers it; a Ray Client server is
    gRPC). None, 'auto' and 'local' are Ray's to resolve (it fails fast when there is nothing)."""
    if not address or address in ("auto", "local"):
        return
    hint = "the head's address is host:6379 (`ray start --head` prints it), 'auto', or ray://host:10001"
    hostport = address.split("://", 1)[-1].split("/", 1)[0]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--ray-address {address!r} is not an address: {hint}")
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_S).close()
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ValueError(f"no Ray cluster at {address}: cannot connect ({why}); is `ray start --head` running "
                         f"there? ({hint})") from None
    try:
        import grpc
    except ImportError:  # Ray brings grpcio; without it, leave the rest to ray.init
        return
    channel = grpc.insecure_channel(hostport)
    try:
        channel.unary_unary(GRPC_HEALTH)(b"", timeout=PROBE_S)
    except grpc.RpcError as exc:
        # ray:// may answer UNIMPLEMENTED, as gRPC does, but not by an HTTP status (grpc reads a 404 so too)
        details = (exc.details() or "")[:120]
        client = address.startswith("ray://") and exc.code() == grpc.StatusCode.UNIMPLEMENTED
        if not client or "http2 header with status" in details:
            raise ValueError(f"{address} answers, but not as a Ray cluster ({exc.code().name}: {details}); is this "
                             f"the Ray head's GCS port? ({hint})") from None
    finally:
        channel.close()


def predictor_factory(args) -> Callable[[], Any]:
    """What each actor calls once to load its predictor: Predictor(--model, --device, --threads). The model folder
    is given by absolute path, so on a cluster it must be at that path on every node (image or shared volume)."""
    from serving.predictor import Predictor

    return functools.partial(Predictor, str(Path(args.model).resolve()), device=args.device, threads=args.threads)


def connect(address: str | None = None) -> bool:
    """Join the Ray cluster at `address` (else $RAY_ADDRESS; checked first, check_address), or start a local Ray on
    this machine's cores; nothing when Ray is already up in this process. True when this call started or joined it
    (the caller shuts it down)."""
    ray = require_ray()
    address = address or os.environ.get("RAY_ADDRESS")
    check_address(address)
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.ERROR, log_to_driver=True)
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=os.cpu_count(), **kw)
    except ConnectionError as exc:
        raise ValueError(f"cannot join the Ray cluster at {address}: {exc} (is `ray start --head` running "
                         "there? the address is host:6379, 'auto' or ray://host:10001)") from None
    return True


def _units() -> dict[str, Callable]:
    """The units of work by name: f(predictor, genome, item, **params) -> result (imported in the actor)."""
    from serving.scoring.genome_regions import region_rows
    from serving.scoring.genome_scan import scan_tile
    from serving.scoring.vcf import score_variant_chunk

    return {"regions": region_rows, "tiles": scan_tile, "variants": score_variant_chunk}


class Failure:
    """An error raised in an actor, sent back as the item's result so the driver raises it in input order as the
    local engine would (a ValueError stays a ValueError: exit 2), without Ray's traceback."""

    def __init__(self, exc: Exception):
        self.kind, self.args, self.state = type(exc), exc.args, dict(getattr(exc, "__dict__", {}))
        try:
            pickle.dumps((self.kind, self.args, self.state))
        except Exception:  # an exception that does not pickle: its type's name and its message do
            self.kind, self.args, self.state = RuntimeError, (f"{type(exc).__name__}: {exc}",), {}

    def error(self) -> Exception:
        """The exception as raised (args and attributes kept; __init__ not run again, so no message is rebuilt)."""
        exc = self.kind.__new__(self.kind)
        exc.args = self.args
        exc.__dict__.update(self.state)
        return exc


class UnitWorker:
    """One Ray actor, for the whole command: its predictor loaded and its genome opened once; run() does one unit
    of work on one item and returns (result or Failure, ambiguity codes met)."""

    def __init__(self, make_predictor: Callable[[], Any], genome_path: str, coords: str = "auto"):
        from serving.genome import Genome

        self.units, self.failed = _units(), None  # failed: Exception | None
        try:
            self.predictor = make_predictor()
            self.genome = Genome(genome_path, quiet=True, alphabet=self.predictor.alphabet, coords=coords)
        except Exception as exc:  # reported for every item: the node lacks the model or the genome
            import socket

            self.failed = RuntimeError(f"a Ray actor on {socket.gethostname()} could not load the model or open "
                                       f"the genome (both must be at the same path on every node): "
                                       f"{type(exc).__name__}: {exc}")

    def run(self, unit: str, work: Any, params: dict[str, Any]) -> tuple[Any, int]:
        try:
            if self.failed is not None:
                raise self.failed
            before = self.genome.ambiguous
            return self.units[unit](self.predictor, self.genome, work, **params), self.genome.ambiguous - before
        except Exception as exc:
            return Failure(exc), 0

    def pid(self) -> int:
        """The actor's process id (which process holds this actor's model)."""
        return os.getpid()


class RayEngine:
    """The Ray side of a command: joins Ray (address, else $RAY_ADDRESS) or starts a local one on this machine's
    cores; pairs() runs a unit of work over items in one pool of Ray actors, started on first use and kept until
    close(), which kills them (and stops a Ray it started)."""

    def __init__(self, genome, make_predictor: Callable[[], Any], address: str | None = None,
                 device: str = "auto", threads: int | None = None, quiet: bool = False):
        from serving.console import say

        ray = self.ray = require_ray()
        self.genome, self.make_predictor, self.device, self.threads = genome, make_predictor, device, threads
        self.actors: list[Any] = []  # the pool's actor handles, once started
        self.started = connect(address)
        res = ray.cluster_resources()
        say(f"ray: {len(self._nodes())} node(s), {res.get('CPU', 0):.0f} CPU(s), {res.get('GPU', 0):.0f} GPU(s) "
            f"({ray.get_runtime_context().gcs_address})", quiet)

    def _nodes(self) -> list[dict[str, float]]:
        return [n["Resources"] for n in self.ray.nodes() if n.get("Alive")]

    def pool(self, n_items: int) -> dict[str, Any]:
        """Actor resources: one actor per GPU (num_gpus=1) when the cluster has GPUs and --device is not cpu; else
        one actor per node using its CPUs (or per --threads CPUs: node CPUs // threads actors)."""
        gpus = int(sum(n.get("GPU", 0) for n in self._nodes()))
        if gpus and self.device != "cpu":
            return {"size": max(1, min(gpus, n_items)), "num_cpus": 1, "num_gpus": 1}
        cpus = [int(n.get("CPU", 0)) for n in self._nodes() if n.get("CPU", 0) >= 1] or [1]
        per_actor = min(self.threads or min(cpus), max(cpus))
        size = sum(c // per_actor for c in cpus)
        return {"size": max(1, min(size, n_items)), "num_cpus": per_actor, "num_gpus": None}

    def _start(self, n_items: int) -> list[Any]:
        """The pool's actors: started once, the first time there is work (no more actors than its first items)."""
        if not self.actors:
            pool = self.pool(n_items)
            resources = {"num_cpus": pool["num_cpus"]} | ({"num_gpus": pool["num_gpus"]} if pool["num_gpus"] else {})
            actor = self.ray.remote(UnitWorker).options(**resources)
            self.actors = [actor.remote(self.make_predictor, str(self.genome.path), self.genome.coords)
                           for _ in range(pool["size"])]
        return self.actors

    def pairs(self, unit: str, items: Iterable[Any], work: Callable[[Any], Any] = lambda item: item,
              **params) -> Iterator[tuple[Any, Any]]:
        """(item, unit(predictor, genome, work(item), **params)) for every item, in input order: the items stay
        here, only work(item) travels to the actors, IN_FLIGHT per actor (each to the least busy one), so at most
        IN_FLIGHT x actors items wait here for their results. An error in an actor is raised at its item (a
        ValueError stays one); an input that fails part-way (a ValueError: a malformed line) is raised after the
        results of the items before it."""
        ray, it, failed = self.ray, iter(items), []

        def draw() -> Any:
            """The next item, or _END (also after a ValueError of the input, kept in `failed`)."""
            if not failed:
                try:
                    return next(it)
                except StopIteration:
                    pass
                except ValueError as exc:
                    failed.append(exc)
            return _END

        first: list[Any] = []
        while len(first) < IN_FLIGHT * self.pool(sys.maxsize)["size"] and (item := draw()) is not _END:
            first.append(item)
        actors = self._start(len(first)) if first else []
        window: deque[tuple[Any, Any]] = deque()  # (item, ObjectRef) in input order, not yet yielded
        running: dict[Any, int] = {}  # ObjectRef -> its actor, until seen done
        load = [0] * len(actors)  # items running or queued per actor

        def submit(item: Any) -> None:
            a = load.index(min(load))
            ref = actors[a].run.remote(unit, work(item), params)
            running[ref], load[a] = a, load[a] + 1
            window.append((item, ref))

        try:
            for item in first:
                submit(item)
            while window:
                item, ref = window[0]
                if ref in running:  # wait for any actor to finish one, then top the pool up
                    for done in ray.wait(list(running), num_returns=1)[0]:
                        load[running.pop(done)] -= 1
                else:
                    window.popleft()
                    result, ambiguous = ray.get(ref)
                    if isinstance(result, Failure):
                        raise result.error()
                    self.genome.ambiguous += ambiguous
                    yield item, result
                while len(window) < IN_FLIGHT * len(actors) and (nxt := draw()) is not _END:
                    submit(nxt)
        except ray.exceptions.RayError as exc:
            raise _plain(exc) from None
        if failed:
            raise failed[0]

    def scan(self, spans: list, length: int, stride: int, rc: bool = False,
             on_tile: Callable[[int], None] | None = None) -> Iterator[Any]:
        """ScanResults tile by tile over the spans, in order (serving.scoring.genome_scan.scan_genome on Ray, for
        a model of `length` bp); on_tile(windows) after each tile."""
        from serving.scoring.genome_scan import plan_tiles

        tiles = plan_tiles(spans, self.genome, length, stride)
        for tile, result in self.pairs("tiles", tiles, stride=stride, rc=rc):
            if on_tile is not None:
                on_tile(tile.windows)
            yield result

    def variants(self, chunks: Iterable[list], rc: bool = False) -> Iterator[tuple[list, list[dict]]]:
        """(VcfRecords, effect rows) per chunk, in order (serving.scoring.vcf.score_variant_chunk on Ray); each
        variant's status here is set from its row, as the local engine's would be."""
        work = functools.partial(_chunk_variants, self.genome)
        for records, rows in self.pairs("variants", chunks, work=work, rc=rc):
            for v, row in zip((v for rec in records for v in rec.variants), rows):
                v.status = row["status"]
            yield records, rows

    def close(self) -> None:
        """Kill the pool's actors (their models and genomes go with them); stop Ray if this engine started it."""
        if self.actors and self.ray.is_initialized():
            for actor in self.actors:
                self.ray.kill(actor)
        self.actors = []
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
        self.started = False


def _chunk_variants(genome, records: list) -> list:
    """The variants of a chunk of VcfRecords (their text stays here). Resolving names here says each alias once."""
    variants = [v for rec in records for v in rec.variants]
    for v in variants:
        if v.status == "ok":
            genome.resolve(v.chrom)
    return variants


def _plain(exc: Exception) -> RuntimeError:
    """A failure of Ray itself (an actor killed, a node lost) in one line: the last line of Ray's traceback."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return RuntimeError(f"the Ray engine failed: {lines[-1].strip() if lines else type(exc).__name__}")
