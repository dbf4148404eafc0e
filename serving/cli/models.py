"""`bindcnn models`: the models one can score or serve, each with its card (serving/cards.py): the exported
folders (models/*/metadata.json) and the BentoML store's bindcnn models, so a person picks a factor's model
without opening JSON files."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from serving.artifact import ArtifactError, METADATA_FILE, read_metadata
from serving.cards import card_lines, model_card
from serving.cli.parsers import EXIT_OK


def folder_cards(root: str | Path) -> list[dict[str, Any]]:
    """Cards of every root/*/ holding a metadata.json, sorted by folder: [{"where": folder, **card}], a folder
    whose metadata cannot be read as {"where", "error"}."""
    out = []
    for meta_path in sorted(Path(root).glob(f"*/{METADATA_FILE}")):
        try:
            out.append({"where": str(meta_path.parent), **model_card(read_metadata(meta_path.parent))})
        except ArtifactError as exc:
            out.append({"where": str(meta_path.parent), "error": str(exc)})
    return out


def store_cards() -> list[dict[str, Any]]:
    """Cards of the BentoML store's models labelled project=bindcnn (bentoml.models.list), by name, oldest
    version first: [{"where": "store", "tag", **card}]."""
    import bentoml

    out = []
    for model in bentoml.models.list():
        if (model.info.labels or {}).get("project") != "bindcnn":
            continue
        tag = str(model.tag)
        try:
            card = model_card(read_metadata(model.path))
        except ArtifactError as exc:
            out.append({"where": "store", "tag": tag, "error": str(exc)})
            continue
        out.append({"where": "store", "tag": tag, **card})
    return sorted(out, key=lambda c: (c["tag"].split(":")[0], c.get("created") or ""))


def cmd_models(args) -> int:
    """Print the cards (text, or --json: one JSON list)."""
    cards = folder_cards(args.models)
    if not args.no_store:
        cards += store_cards()
    if args.json:
        print(json.dumps(cards, indent=2))
        return EXIT_OK
    if not cards:
        print(f"no models in {args.models}/ or the BentoML store; train one with: bindcnn train "
              "(or bindcnn train --motif MA0138 for REST)", file=sys.stderr)
        return EXIT_OK
    for card in cards:
        where = card["where"] if card["where"] != "store" else "BentoML store"
        if "error" in card:
            print(f"{where}: unreadable: {card['error']}\n")
            continue
        print("\n".join(card_lines(card, where)) + "\n")
    return EXIT_OK
