"""Request bodies of the service that are more than plain strings: /predict_one items (validated per request,
before BentoML's adaptive batching joins requests), /variants items and /saliency's attribution method."""
from __future__ import annotations

import functools
from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, Field

from serving.attribution import METHODS
from serving.dna import SequenceError, check_sequences

BATCH_MAX_SIZE = 256  # sequences per /predict_one request, and per shared batch


@functools.cache
def served_input(model: str | None = None) -> tuple[int, str]:
    """(sequence length, alphabet) of a served model (by name; None: the default, serving.store.model_tags),
    read from its metadata.json in the store at the first request that needs it. ValueError for a model not
    served."""
    from serving.artifact import read_metadata
    from serving.store import model_tags, resolve

    tags = model_tags()
    tag = tags[0] if not model else next((t for t in tags if model in (t, t.split(":")[0])), None)
    if tag is None:
        raise ValueError(f"model {model!r} is not served here; served: "
                         f"{', '.join(t.split(':')[0] for t in tags)} (GET /models describes them)")
    metadata = read_metadata(resolve(tag))
    return int(metadata["sequence_length"]), str(metadata["alphabet"])


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
    model: Optional[str] = None  # a served model's name (GET /models); default: the first served


def item_sequence(item: Union[str, OneSequence]) -> str:
    return item if isinstance(item, str) else item.sequence


def _check_items(items: list[Union[str, OneSequence]]) -> list[Union[str, OneSequence]]:
    """A request's items must be valid as a whole (one bad item must not fail the batch it would join);
    validated without encoding, the batch is encoded once."""
    if not items:
        raise ValueError("no sequences given")
    models = [s.model if isinstance(s, OneSequence) else None for s in items]
    for model in dict.fromkeys(models):
        length, alphabet = served_input(model)
        try:
            check_sequences([item_sequence(s) for s, m in zip(items, models) if m == model], length, alphabet)
        except SequenceError as exc:
            raise ValueError(str(exc) if model is None else f"model {model}: {exc}") from None
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
