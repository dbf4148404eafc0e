"""The routes BentoML's @bentoml.api cannot express, as one small Starlette app mounted on the service with BentoML's
public Service.mount_asgi_app: the docs page (/) and document (/docs.json), GET /model and /models, and POST
/raw/predict_codes, whose body is the codes themselves (BentoML's API parameters are JSON fields or multipart files,
never a raw body).

Each handler finds the service instance through bentoml.get_current_service(); nothing is shared through module
state. The service's middlewares (body cap, error shape and counts) wrap these routes too.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from serving.service.apidocs import INDEX_HTML, RAW_CODES, describe_spec


def make_app(openapi_spec: Callable[[], dict[str, Any]], version: str):
    """The Starlette app. openapi_spec() -> BentoML's OpenAPI document of the service as a dict (read once per
    worker); version: bindcnn's version for the document's title."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    described: dict[str, bytes] = {}

    async def index(request) -> Response:
        return Response(INDEX_HTML, media_type="text/html; charset=utf-8")

    async def docs(request) -> Response:
        if "body" not in described:
            spec = describe_spec(openapi_spec(), version, _service().metadata)
            described["body"] = json.dumps(spec).encode()
        return Response(described["body"], media_type="application/json")

    async def model(request) -> JSONResponse:
        return JSONResponse(await _service().describe())

    async def models(request) -> JSONResponse:
        return JSONResponse(_service().model_cards())

    async def raw_codes(request) -> Response:
        from anyio import to_thread

        rc = request.query_params.get("reverse_complement_average", "false").lower() in ("1", "true", "yes")
        model = request.query_params.get("model")
        body = await request.body()
        status, answer = await to_thread.run_sync(_score_raw, _service(), body, rc, model)  # off the event loop
        return JSONResponse(answer, status_code=status)

    return Starlette(routes=[Route("/", index, methods=["GET"]), Route("/docs.json", docs, methods=["GET"]),
                             Route("/model", model, methods=["GET"]), Route("/models", models, methods=["GET"]),
                             Route(RAW_CODES, raw_codes, methods=["POST"])])


def _service():
    import bentoml

    return bentoml.get_current_service()


def _score_raw(service, body: bytes, rc: bool, model: str | None) -> tuple[int, dict[str, Any]]:
    """The codes in a raw body, for the served model named `model` (None: the default) -> (200, {probability,
    logit}) or (400/413, {error})."""
    from bentoml.exceptions import BentoMLException

    from serving.service import metrics
    from serving.service.uploads import codes_from_bytes

    try:
        m = service.pick(model)
        codes = codes_from_bytes(body, service.limits, m.length)
    except BentoMLException as exc:  # InvalidArgument (400), the limits' TooLarge (413)
        return int(exc.error_code), {"error": str(exc)}
    out = m.predictor.predict_codes(codes, rc)
    metrics.scored(len(codes), "raw/predict_codes", m.name)
    return 200, {"probability": out["probability"].tolist(), "logit": out["logit"].tolist()}
