"""How the predictor reaches the saliency explainer: by URL (BINDCNN_EXPLAINER_URL: a separate explainer service,
`bindcnn serve --explainer-only`), in-process (a bentoml.depends worker of the same `bentoml serve`, when
TensorFlow is installed here), or not at all (no URL, no TensorFlow: saliency answers 503 naming the setting).

Readiness without hanging: BentoML 1.4.40's /readyz probes a dependency through RemoteProxy.is_ready, which never
releases the probe's response; under concurrent saliency load /readyz then hung for 30 s and more. The predictor
turns that probe off (serving.service.workers.predictor_config) and asks ExplainerLink.ready() instead.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import importlib.util
import logging
import os

import bentoml

URL_ENV = "BINDCNN_EXPLAINER_URL"
INSTALL_EXPLAIN = "pip install 'bindcnn[explain]'"
PROBE_TIMEOUT_S = 1.0

log = logging.getLogger("bentoml.bindcnn.explainer_link")


def explainer_url() -> str | None:
    """BINDCNN_EXPLAINER_URL without a trailing slash, or None when unset or empty."""
    return os.environ.get(URL_ENV, "").strip().rstrip("/") or None


def installed(*packages: str) -> bool:
    """True when every package can be imported here (looked up, not imported)."""
    try:
        return all(importlib.util.find_spec(p) is not None for p in packages)
    except (ImportError, ValueError):
        return False


def mode() -> str:
    """'url' (BINDCNN_EXPLAINER_URL set), 'local' (TensorFlow installed: an explainer worker in this server) or
    'none'."""
    if explainer_url():
        return "url"
    return "local" if installed("tensorflow") else "none"


def dependency():
    """The predictor's `explainer` class attribute for the current mode: a bentoml.depends, or None."""
    from serving.service.explainer import Explainer

    how = mode()
    if how == "url":
        return bentoml.depends(Explainer, url=explainer_url())
    return bentoml.depends(Explainer) if how == "local" else None


def unavailable_message() -> str:
    return (f"saliency needs the explainer service, and this predictor has none: set {URL_ENV} to the URL of an "
            f"explainer (`bindcnn serve --explainer-only`), or install TensorFlow here ({INSTALL_EXPLAIN}) so "
            "that `bentoml serve` runs one in-process")


class Unavailable(Exception):
    """The explainer (or a plotting package) is not there: a 503 whose body says why and what to do. Raised as a
    BentoMLException its message would be lost (BentoML 1.4.40 answers every 5xx with a generic sentence)."""

    def response(self):
        from starlette.responses import JSONResponse

        log.warning("503: %s", self)
        return JSONResponse({"error": str(self)}, status_code=503, headers={"Retry-After": "5"})


def answers_503(endpoint):
    """Decorator of an endpoint that calls the explainer (or draws): Unavailable becomes its 503 response. An
    endpoint with a `ctx` (bentoml.Context) gets the status there too: BentoML sets its answer's status from it."""
    def unavailable(exc: Unavailable, kwargs: dict):
        ctx = kwargs.get("ctx")
        if ctx is not None:
            ctx.response.status_code = 503
        return exc.response()

    if inspect.iscoroutinefunction(endpoint):
        @functools.wraps(endpoint)
        async def wrapper(*args, **kwargs):
            try:
                return await endpoint(*args, **kwargs)
            except Unavailable as exc:
                return unavailable(exc, kwargs)
    else:
        @functools.wraps(endpoint)
        def wrapper(*args, **kwargs):
            try:
                return endpoint(*args, **kwargs)
            except Unavailable as exc:
                return unavailable(exc, kwargs)

    return wrapper


class ExplainerLink:
    """The predictor worker's handle on its explainer (`proxy`: the resolved bentoml.depends, or None)."""

    def __init__(self, proxy, how: str):
        self.proxy, self.mode = proxy, how
        # Only an in-process explainer gates readiness, and only until it first answers: a predictor keeps
        # serving predictions while an explainer is down (saliency answers 503 meanwhile).
        self.seen_ready = how != "local"

    def describe_target(self) -> dict:
        return {"mode": self.mode, "url": explainer_url()}

    async def ready(self) -> bool:
        """The worker's __is_ready__: True once the in-process explainer has answered (a 1 s probe, never a
        hang); always True with a URL or without an explainer."""
        if not self.seen_ready:
            try:
                await asyncio.wait_for(self.proxy.to_async.describe(), PROBE_TIMEOUT_S)
                self.seen_ready = True
            except Exception as exc:  # not up yet: the next probe asks again
                log.debug("explainer not ready yet: %s", exc)
        return self.seen_ready

    async def call(self, api: str, /, **kwargs):
        """Call an explainer API. A dropped connection (an idle keep-alive closed just as it is reused, or the
        explainer restarting) is retried once; then, or without an explainer, Unavailable saying what to do."""
        import aiohttp

        if self.proxy is None:
            raise Unavailable(unavailable_message())
        for attempt in (1, 2):
            try:
                return await getattr(self.proxy.to_async, api)(**kwargs)
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                where = explainer_url() or "the in-process explainer worker"
                if attempt == 2:
                    raise Unavailable(f"the explainer ({where}) is unavailable ({type(exc).__name__}: "
                                             f"{exc}); retry shortly") from None
                log.warning("explainer %s: %s; retrying once", api, exc)
                await asyncio.sleep(0.05)

    async def describe(self) -> dict:
        """The explainer's own description for /model, or why there is none (never raises)."""
        if self.proxy is None:
            return {**self.describe_target(), "error": unavailable_message()}
        try:
            return {**self.describe_target(),
                    **await asyncio.wait_for(self.proxy.to_async.describe(), PROBE_TIMEOUT_S * 5)}
        except Exception as exc:  # the explainer being down must not hide the predictor's state
            return {**self.describe_target(), "error": f"explainer unavailable: {type(exc).__name__}: {exc}"}
