"""bigWig tracks of window scores (pyBigWig), written as a scan goes: the same intervals and values as the bedGraph
(each window's probability on the min(stride, L) bp at its centre), or one value per base (variants --all-snvs);
chromosome sizes from the genome's index."""
from __future__ import annotations

import os

from serving.scoring.regions import Region
from serving.scoring.scan import ScanResult

MAX_ZOOMS = 10  # pyBigWig's default: summary levels for zoomed-out views
# libBigWig keeps every zoom record in memory until the file is closed (~8 bytes per interval written, measured
# with pyBigWig 0.3.29), so zoom levels are written only for tracks up to this many intervals (~64 MB of them):
# memory stays bounded whatever the genome. Larger tracks are complete but have no zoom levels.
ZOOM_MAX_INTERVALS = 1 << 23


class BigWigWriter:
    """A bigWig being written. sizes: {chrom: length} (the genome's order; ScanResults must come in that order,
    and in increasing position within a chromosome). intervals: how many will be written (None: unknown);
    zoom levels are written when that is at most ZOOM_MAX_INTERVALS (self.zooms says whether)."""

    def __init__(self, path: str | os.PathLike, sizes: dict[str, int], intervals: int | None = None):
        import pyBigWig

        self.path = str(path)
        self.bw = pyBigWig.open(self.path, "w")
        if self.bw is None:
            raise OSError(f"{path}: cannot create the bigWig (is the folder writable?)")
        self.zooms = intervals is not None and intervals <= ZOOM_MAX_INTERVALS
        self.bw.addHeader([(c, int(n)) for c, n in sizes.items()], maxZooms=MAX_ZOOMS if self.zooms else 0)
        self.intervals = 0

    def add(self, result: ScanResult, region: Region = Region("")) -> int:
        """Write one ScanResult's bins (in region coordinates, chrom = region.chrom or the result's id).
        Returns the number of intervals written."""
        lo, hi = result.bins()
        if len(lo) == 0:
            return 0
        chrom = region.chrom or result.id
        lo = lo + region.offset
        try:
            if len(lo) == 1:
                self.bw.addEntries([chrom], [int(lo[0])], ends=[int(hi[0]) + region.offset],
                                   values=[float(result.probability[0])])
            else:  # fixed step: one call, no per-interval Python objects
                span = int(hi[0]) + region.offset - int(lo[0])
                self.bw.addEntries(chrom, int(lo[0]), values=result.probability, span=span, step=result.stride)
        except RuntimeError as exc:
            raise ValueError(f"{self.path}: bigWig entries must come in the genome's order without overlap "
                             f"({chrom}:{int(lo[0])}): {exc}") from None
        self.intervals += len(lo)
        return len(lo)

    def add_values(self, chrom: str, start: int, values) -> int:
        """Write values (n,) float32, one per base from 0-based `start` of chrom (a base-resolution track, e.g.
        each base's strongest variant effect). Returns n."""
        if len(values) == 0:
            return 0
        try:
            self.bw.addEntries(chrom, int(start), values=values, span=1, step=1)
        except RuntimeError as exc:
            raise ValueError(f"{self.path}: bigWig entries must come in the genome's order without overlap "
                             f"({chrom}:{int(start)}): {exc}") from None
        self.intervals += len(values)
        return len(values)

    def close(self) -> None:
        if self.bw is not None:
            self.bw.close()
            self.bw = None
