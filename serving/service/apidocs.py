"""The service's own API documentation: a real title, version and description, a summary per endpoint and
request examples that work as they are, made from BentoML's public OpenAPI document (Service.openapi_spec), and a
Swagger page; served by serving/service/routes.py.

BentoML 1.4.40 titles the document "<service>:<bento version>" (version "None" from source), describes it as
"a Machine Learning Service created with BentoML" with remote badge images, gives no summaries, example bodies
like {"sequences": ["string"]} that answer 400, a Servers entry ".", and documents a 400's `detail` as a string
where pydantic sends a list. Its index page loads a remote tag manager; ours uses BentoML's local static files.
"""
from __future__ import annotations

from typing import Any

# MA0139.1's consensus (CTCF, the core 19 nt) set in a 200-nt sequence: the model calls it bound.
CTCF_CORE = "TGGCCACCAGGGGGCGCTA"
_LEFT = "GATCCTGCAGTTGAGCCAATCTTGGCATTCAGCAAGTCCTTAGGCTGTGAAACCTCATTGGCAGTCACATTCCAGAAGGACAGTGCTAGC"
_RIGHT = "GTCTGACTGGGCAAGTCAGTTCACCTCTTTGGGCCTCAGTTTCCTCATCTGTAAAATGAGGGGCTTGGACTAGATGATCTCTAAGGTCCCTTCCAGCTC"
EXAMPLE_200 = _LEFT[:90] + CTCF_CORE + _RIGHT[:91]
INDEX_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><title>bindcnn API</title>
<link rel="stylesheet" type="text/css" href="./static_content/swagger-ui.css" />
<link rel="icon" type="image/png" href="./static_content/favicon-light-32x32.png" sizes="32x32" /></head>
<body><div id="swagger-ui"></div>
<script src="./static_content/swagger-ui-bundle.js" charset="UTF-8"></script>
<script src="./static_content/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
<script src="./static_content/swagger-initializer.js" charset="UTF-8"></script>
</body></html>
""".encode()
# route -> (tag, summary) for Swagger's rows; an endpoint not listed gets the first clause of its docstring.
OPERATIONS = {
    "/predict": ("predict", "Score sequences sent as JSON strings"),
    "/predict_fasta": ("predict", "Score every record of a FASTA file (upload)"),
    "/predict_onehot": ("predict", "Score a one-hot .npy array (upload)"),
    "/predict_one": ("predict", "Score one sequence; concurrent requests share a batch"),
    "/predict_codes": ("predict", "Score sequences sent as bytes, one code per base (upload)"),
    "/scan": ("long sequences and variants", "Scan a long sequence window by window; call sites"),
    "/scan_fasta": ("long sequences and variants", "Scan every record of a FASTA file (upload)"),
    "/variants": ("long sequences and variants", "Effect of variants on binding (alt - ref)"),
    "/mutagenesis": ("explain", "In-silico saturation mutagenesis: every substitution's logit change"),
    "/mutagenesis_logo": ("explain", "In-silico saturation mutagenesis as a logo (PNG)"),
    "/saliency": ("explain", "Attribution scores per position and base (TensorFlow explainer)"),
    "/saliency_logo": ("explain", "Attribution of one sequence as a sequence logo (PNG)"),
    "/model": ("service", "The default model's metadata, execution provider, versions and limits"),
    "/models": ("service", "The served models, a card each (factor, data, test metrics vs the PWM baseline)"),
    "/healthz": ("Infrastructure", "Liveness: the server process answers"),
    "/livez": ("Infrastructure", "Liveness: the server process answers (Kubernetes livenessProbe)"),
    "/readyz": ("Infrastructure", "Readiness: the model is loaded and requests are taken (readinessProbe)"),
    "/metrics": ("Infrastructure", "Prometheus metrics"),
}


def example_sequence(length: int, alphabet: str = "ACGT", span: int = 1) -> str:
    """A sequence of `span` x the model's length with the CTCF core at its centre (the 200-nt example when it fits)."""
    from serving.dna import random_dna

    n = length * span
    base = EXAMPLE_200 * (n // len(EXAMPLE_200) + 1) if alphabet == "ACGT" else random_dna(1, n, seed=7)[0]
    start = max(0, (n - len(CTCF_CORE)) // 2)
    return (base[:start] + CTCF_CORE + base[start + len(CTCF_CORE):])[:n] if n >= len(CTCF_CORE) else base[:n]


def example_fasta(length: int) -> str:
    """Two records of the model's length: the CTCF example and the same without its site."""
    bound = example_sequence(length)
    unbound = bound.replace(CTCF_CORE, "A" * len(CTCF_CORE))
    return f">ctcf_site\n{bound}\n>no_site\n{unbound}\n"


def request_example(route: str, properties: dict[str, Any], length: int) -> dict[str, Any] | None:
    """A JSON body that works as it is for an endpoint whose request schema has these properties."""
    seq = example_sequence(length)
    body: dict[str, Any] = {}
    if "sequences" in properties:
        body["sequences"] = [seq]
    if "sequence" in properties:
        body["sequence"] = example_sequence(length, span=2) if route.startswith("/scan") else seq
    if "variants" in properties:
        i = len(seq) // 2
        body["variants"] = [{"pos": i + 1, "ref": seq[i], "alt": "A" if seq[i] != "A" else "C", "id": "example"}]
    if route.startswith("/scan"):
        body.update(id="chr1:1000000-1000400", stride=10)
    return body or None


def describe_spec(spec: dict[str, Any], version: str, model: dict[str, Any]) -> dict[str, Any]:
    """BentoML's OpenAPI document (as a dict) -> the same with bindcnn's info, a summary per operation, examples,
    GET /model, the raw-body /raw/predict_codes and pydantic's 400 detail. model: the served model's metadata.json
    (name, version, sequence_length, alphabet, metrics)."""
    name, mversion = model.get("name", "?"), model.get("version", "?")
    length, alphabet = int(model.get("sequence_length", 200)), model.get("alphabet", "ACGT")
    metrics = model.get("metrics") or {}
    test_auroc = (metrics.get("test") or {}).get("auroc")
    auroc = f" (test AUROC {test_auroc:.3f})" if isinstance(test_auroc, (int, float)) else ""
    spec["info"] = {
        "title": "bindcnn: CTCF binding from DNA sequence",
        "version": f"{version} (model {name}:{mversion})",
        "description": (
            f"Predicts whether a {length}-nt DNA sequence is bound by the transcription factor CTCF, with the "
            f"convolutional network `{name}:{mversion}`{auroc}, run by ONNX Runtime.\n\n"
            f"- Sequences are strings of {alphabet} (and N), any case, exactly {length} nt; longer ones go to "
            "`/scan`.\n- `probability` is P(bound); `logit` its log-odds.\n- Files (FASTA, plain or gzip; "
            ".npy one-hot) go as multipart uploads, e.g. "
            "`curl -F fasta=@seqs.fa http://HOST/predict_fasta`.\n- Errors name the sequence, position and "
            "character at fault: 400 bad input, 413 over a limit (see `/model`), 503 busy or unavailable.\n\n"
            "Every POST example below works as it is: press *Try it out*, then *Execute*. A small FASTA to "
            f"upload:\n\n```\n{example_fasta(length)}```"),
    }
    spec["tags"] = [{"name": "predict", "description": "Binding probability of sequences of the model's length"},
                    {"name": "long sequences and variants", "description": "Windows along longer DNA; variant effects"},
                    {"name": "explain", "description": "Which bases drive the prediction"},
                    {"name": "service", "description": "What is served, and the request limits"},
                    *[t for t in spec.get("tags", []) if t.get("name") == "Infrastructure"]]
    for route, item in spec.get("paths", {}).items():
        for op in item.values():
            if not isinstance(op, dict) or "description" not in op:
                continue
            doc = " ".join((op.get("description") or "").split())
            tag, summary = OPERATIONS.get(route, (_tag_of(route), doc.split(" -> ")[0].split(". ")[0] or route))
            op["summary"] = summary[:120]
            op["tags"] = [tag]
            _add_example(spec, route, op, length)
    spec["servers"] = [{"url": "/", "description": "this server"}]
    paths = spec.setdefault("paths", {})
    for route in ("/model", "/models"):  # GET too (serving/service/routes.py)
        if "post" in paths.get(route, {}):
            paths[route]["get"] = dict(paths[route]["post"], operationId=f"{route[1:]}_get")
            paths[route]["get"].pop("requestBody", None)
    paths[RAW_CODES] = {"post": _raw_codes_operation(length)}
    _document_validation_errors(spec)
    return spec


RAW_CODES = "/raw/predict_codes"


def _raw_codes_operation(length: int) -> dict[str, Any]:
    """POST /raw/predict_codes (serving/service/routes.py): the codes as the raw body, the fastest transport."""
    return {
        "tags": ["predict"], "operationId": "predict_codes_raw",
        "summary": "Score sequences sent as a raw body of bytes, one code per base (fastest)",
        "description": ("The body is N x " + str(length) + " bytes, one per position (0-3 = A, C, G, T, 4 = N), rows "
                        "back to back, or a .npy of integers (N, " + str(length) + "), e.g.\n\n```\ncurl "
                        "--data-binary @codes.bin -H 'Content-Type: application/octet-stream' "
                        "'http://HOST/raw/predict_codes?reverse_complement_average=false'\n```"),
        "parameters": [{"name": "reverse_complement_average", "in": "query", "required": False,
                        "schema": {"type": "boolean"}, "description": "average both strands' logits"},
                       {"name": "model", "in": "query", "required": False, "schema": {"type": "string"},
                        "description": "a served model's name (GET /models); default: the first served"}],
        "requestBody": {"required": True, "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}},
        "responses": {
            "200": {"description": "probability and logit: N floats each", "content": {"application/json": {
                "schema": {"type": "object", "properties": {
                    "probability": {"type": "array", "items": {"type": "number"}},
                    "logit": {"type": "array", "items": {"type": "number"}}}}}}},
            "400": {"description": "bad codes", "content": {"application/json": {"schema": _ERROR}}},
            "413": {"description": "over a limit", "content": {"application/json": {"schema": _ERROR}}},
        },
    }


_ERROR = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}


def _document_validation_errors(spec: dict[str, Any]) -> None:
    """A 400's `detail` is a string or pydantic's list of errors (BentoML documents only the string)."""
    schema = spec.get("components", {}).get("schemas", {}).get("InvalidArgument")
    if not schema or "detail" not in (schema.get("properties") or {}):
        return
    error = {"type": "object", "title": "Validation error", "required": ["loc", "msg", "type"], "properties": {
        "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
        "msg": {"type": "string"}, "type": {"type": "string"}}}
    schema["properties"]["detail"] = {"title": "Error Detail",
                                      "anyOf": [{"type": "string"}, {"type": "array", "items": error}]}


def _tag_of(route: str) -> str:
    """The Swagger group of an endpoint not listed in OPERATIONS, from its name."""
    for prefix, tag in (("/predict", "predict"), ("/scan", "long sequences and variants"),
                        ("/variants", "long sequences and variants"), ("/saliency", "explain"),
                        ("/mutagenesis", "explain")):
        if route.startswith(prefix):
            return tag
    return "service"


def _add_example(spec: dict[str, Any], route: str, op: dict[str, Any], length: int) -> None:
    content = (op.get("requestBody") or {}).get("content") or {}
    media = content.get("application/json")
    if media is None:
        if "multipart/form-data" in content and "fasta" in route:
            op["description"] = (op.get("description") or "") + (
                "\n\nUpload a file, e.g. this FASTA saved as `example.fa`:\n\n```\n" + example_fasta(length) + "```")
        return
    schema = media.get("schema") or {}
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
    body = request_example(route, schema.get("properties") or {}, length)
    if body is not None:
        media["example"] = body
