"""Data sets: one reader per format, a content-keyed decode cache, and the train/val/test `Dataset` the trainer uses."""
from vitnas.nas.data.dataset import Dataset, Normalize
from vitnas.nas.data.loader import default_cache_dir, load_dataset

__all__ = ["Dataset", "Normalize", "default_cache_dir", "load_dataset"]
