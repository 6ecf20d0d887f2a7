"""Data: the dataset tool (`prepare_dataset`), the training-time loader (`ImageDataset`, `open_dataset`),
the resumable sharded sampler (`InfiniteSampler`) and built-in datasets (`builtin:twemoji`)."""

from adagan.data.dataset import ImageDataset, open_dataset
from adagan.data.prepare import PrepareReport, prepare_dataset
from adagan.data.sampler import InfiniteSampler

__all__ = ["ImageDataset", "InfiniteSampler", "PrepareReport", "open_dataset", "prepare_dataset"]
