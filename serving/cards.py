"""A model's card: the few facts a person choosing among several models needs (which factor and matrix, which
data, how well it did against the PWM baseline, ONNX/TensorFlow parity, input length), read from metadata.json.
One home for it: `bindcnn models` prints cards and the service's GET /models returns them."""
from __future__ import annotations

from typing import Any

# Models exported before metadata recorded "factor" were all trained on the built-in CTCF set or a record's file;
# their baseline names the matrix ("MA0139.1 CTCF"), which is where their factor is read from.


def model_factor(metadata: dict[str, Any]) -> dict[str, str | None]:
    """{"name": factor or None, "matrix_id": JASPAR ID or None}: metadata's "factor" record, else the matrix its
    PWM baseline used ("MA0139.1 CTCF" -> CTCF, MA0139.1)."""
    factor = metadata.get("factor")
    if isinstance(factor, dict) and (factor.get("name") or factor.get("matrix_id")):
        return {"name": factor.get("name"), "matrix_id": factor.get("matrix_id")}
    matrix = ((metadata.get("baseline") or {}).get("pwm") or {}).get("matrix")
    if isinstance(matrix, str) and matrix.strip():
        matrix_id, _, name = matrix.strip().partition(" ")
        return {"name": name.strip() or None, "matrix_id": matrix_id}
    return {"name": None, "matrix_id": None}


def _rounded(value: Any, digits: int = 4) -> float | None:
    return round(float(value), digits) if isinstance(value, (int, float)) else None


def model_card(metadata: dict[str, Any]) -> dict[str, Any]:
    """The card of one model, from its metadata.json (as serving.artifact.read_metadata returns it): a flat,
    JSON-able dict. Keys: name, version, created, factor, matrix_id, sequence_length, training_data, data_source,
    test_auroc, test_aupr, pwm_auroc, pwm_aupr, beats_pwm, parity_max_abs_prob_diff, parity_max_scaled_logit_diff,
    bentoml_tag. A value the metadata does not hold is None (older exports, data without a test split)."""
    factor = model_factor(metadata)
    data = metadata.get("data") or {}
    test = (metadata.get("metrics") or {}).get("test") or {}
    baseline = metadata.get("baseline") or {}
    pwm = baseline.get("pwm") or {}
    parity = metadata.get("parity") or {}
    return {
        "name": metadata.get("name"),
        "version": metadata.get("version"),
        "created": metadata.get("created"),
        "factor": factor["name"],
        "matrix_id": factor["matrix_id"],
        "sequence_length": metadata.get("sequence_length"),
        "training_data": data.get("description"),
        "data_source": data.get("source"),
        "test_auroc": _rounded(test.get("auroc")),
        "test_aupr": _rounded(test.get("aupr")),
        "pwm_auroc": _rounded(pwm.get("auroc")),
        "pwm_aupr": _rounded(pwm.get("aupr")),
        "beats_pwm": baseline.get("beats_baseline"),
        "parity_max_abs_prob_diff": parity.get("max_abs_prob_diff"),
        "parity_max_scaled_logit_diff": parity.get("max_scaled_logit_diff"),
        "bentoml_tag": metadata.get("bentoml_tag"),
    }


def card_lines(card: dict[str, Any], where: str | None = None) -> list[str]:
    """A card as a few readable lines for a terminal (`bindcnn models`); where: the folder or store tag."""
    def num(v: Any) -> str:
        return "?" if v is None else f"{v:.4f}"

    factor = " ".join(str(v) for v in (card["factor"], card["matrix_id"] and f"({card['matrix_id']})") if v) or "?"
    versus = {True: "beats it", False: "does NOT beat it"}.get(card["beats_pwm"], "?")
    parity = card["parity_max_abs_prob_diff"]
    lines = [f"{card['name']}:{card['version']}" + (f"  [{where}]" if where else ""),
             f"  factor:   {factor}; input {card['sequence_length']} nt",
             f"  data:     {card['training_data'] or '?'}",
             f"  test:     AUROC {num(card['test_auroc'])}  AUPR {num(card['test_aupr'])}; PWM baseline AUROC "
             f"{num(card['pwm_auroc'])}  AUPR {num(card['pwm_aupr'])} ({versus})",
             f"  parity:   ONNX vs TensorFlow max |dprob| " + ("?" if parity is None else f"{parity:.1e}")]
    return lines
