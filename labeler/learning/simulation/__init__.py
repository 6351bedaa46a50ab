"""``labeler simulate``: replay active learning on labelled data (see ``replay``).

Split by job: ``data`` reads the labelled data, ``cache`` keeps embeddings between runs,
``replay`` runs the strategies, ``plot`` writes the curves. Re-exported here.
"""

from .cache import cached_embeddings
from .data import FolderDataset, load_arrays, load_folder_dataset
from .plot import CURVE_COLUMNS, mean_curves, write_curve
from .replay import CurveRow, full_pool_accuracy, label_schedule, simulate, split_pool

__all__ = [
    "CURVE_COLUMNS",
    "CurveRow",
    "FolderDataset",
    "cached_embeddings",
    "full_pool_accuracy",
    "label_schedule",
    "load_arrays",
    "load_folder_dataset",
    "mean_curves",
    "simulate",
    "split_pool",
    "write_curve",
]
