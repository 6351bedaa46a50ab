"""``labeler simulate``: replay active learning on labelled data (see ``replay``).

Split by job: ``data`` reads the labelled data, ``cache`` keeps embeddings between runs,
``replay`` runs the strategies, ``plot`` writes the curves; the ``tag_`` modules do
the same for multi-label (tag) data. Re-exported here.
"""

from .cache import cached_embeddings
from .data import FolderDataset, load_arrays, load_folder_dataset
from .plot import CURVE_COLUMNS, mean_curves, write_curve
from .replay import CurveRow, full_pool_accuracy, label_schedule, simulate, split_pool
from .tag_data import load_tag_arrays, load_tag_csv
from .tag_plot import TAG_CURVE_COLUMNS, mean_tag_curves, write_tag_curve
from .tag_replay import TagCurveRow, simulate_tags, split_tag_pool

__all__ = [
    "CURVE_COLUMNS",
    "TAG_CURVE_COLUMNS",
    "CurveRow",
    "FolderDataset",
    "TagCurveRow",
    "cached_embeddings",
    "full_pool_accuracy",
    "label_schedule",
    "load_arrays",
    "load_folder_dataset",
    "load_tag_arrays",
    "load_tag_csv",
    "mean_curves",
    "mean_tag_curves",
    "simulate",
    "simulate_tags",
    "split_pool",
    "split_tag_pool",
    "write_curve",
    "write_tag_curve",
]
