"""Request bodies of the service that are more than plain strings: /predict_one items (validated per request,
before serving.service.microbatch joins them), /variants items and /saliency's attribution method. The model's input
spec is set by the app at start."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, Field

from serving.attribution import METHODS
from serving.dna import SequenceError, check_sequences

BATCH_MAX_SIZE = 256  # sequences per shared batch of /predict_one
SPEC: dict[str, Any] = {}  # {"length", "alphabet"} of the served model, set by BindCNN.__init__ in this worker


AttributionMethod = Literal[METHODS]  # /saliency's method: gradient, corrected or expected_gradients


def attribution_method(method: str | None, corrected: bool | None) -> str:
    """The /saliency method: gradient (grad x input), corrected (gradient minus its per-position mean, x input) or
    expected_gradients (integrated gradients averaged over dinucleotide-shuffled references; the default); without
    method, corrected true/false (the older option) means corrected/gradient. 400 when the two contradict."""
    from bentoml.exceptions import InvalidArgument

    from serving.attribution import resolve_method

    try:
        return resolve_method(method, corrected)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


class OneSequence(BaseModel):
    """A /predict_one item with options; a plain string is the same with the defaults."""

    sequence: str
    reverse_complement_average: bool = False


def item_sequence(item: Union[str, OneSequence]) -> str:
    return item if isinstance(item, str) else item.sequence


def _check_items(items: list[Union[str, OneSequence]]) -> list[Union[str, OneSequence]]:
    """A request's items must be valid as a whole (one bad item must not fail the batch it would join);
    validated without encoding, the batch is encoded once."""
    if not items:
        raise ValueError("no sequences given")
    if SPEC:
        try:
            check_sequences([item_sequence(s) for s in items], SPEC["length"], SPEC["alphabet"])
        except SequenceError as exc:
            raise ValueError(str(exc)) from None
    return items


BatchItems = Annotated[
    list[Union[str, OneSequence]],
    Field(max_length=BATCH_MAX_SIZE),
    AfterValidator(_check_items),
]


class VariantIn(BaseModel):
    """A /variants item: 1-based position of the first ref base in the request's sequence."""

    pos: int = Field(ge=1)
    ref: str = Field(min_length=1, max_length=1000)
    alt: str = Field(min_length=1, max_length=1000)
    id: str = ""
