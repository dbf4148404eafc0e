"""Download of the real <TF>_200.h5 sets (Zenodo record 7265991; needs internet, optional: no test needs it),
written beside the target as .part and validated before it takes the final name."""
from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from training.datasets.h5 import DatasetError, load_h5

ZENODO_RECORD = "7265991"
ZENODO_TFS = ("CTCF", "ATF2", "BACH1", "ELK1", "GABPA", "MAX", "REST", "SRF", "ZNF24")


def zenodo_url(tf: str) -> str:
    return f"https://zenodo.org/records/{ZENODO_RECORD}/files/{tf}_200.h5?download=1"


def download(tf: str, out: str | os.PathLike, url: str | None = None, progress: bool = True) -> Path:
    """Download `<tf>_200.h5` from Zenodo record 7265991 (needs internet), then validate it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    url = url or zenodo_url(tf)
    part = out.with_name(out.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as resp, open(part, "wb") as fh:
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        while block := resp.read(1 << 20):
            fh.write(block)
            done += len(block)
            if progress:
                pct = f" {100 * done / total:5.1f}%" if total else ""
                print(f"\rdownloading {url}: {done / 1e6:8.1f} MB{pct}", end="", file=sys.stderr)
    if progress:
        print(file=sys.stderr)
    try:
        load_h5(part)
    except DatasetError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, out)
    return out


