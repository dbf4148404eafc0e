"""Where training data comes from, one module per source: the HDF5 layout (h5), the built-in synthetic set
(synthetic), FASTA files (fasta), the real data's download (download) and motif matrices (jaspar)."""
from training.datasets.h5 import SPLITS, Dataset, DatasetError, describe, load_h5, write_h5

__all__ = ["SPLITS", "Dataset", "DatasetError", "describe", "load_h5", "write_h5"]
