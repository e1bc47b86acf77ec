"""The MEMTRACK-style evaluation: datasets (our JSONL format, LoCoMo, LongMemEval)."""

from .dataset import Dataset, DatasetError, Event, Instance, Question, load_jsonl
from .published import load_locomo, load_longmemeval

__all__ = [
    "Dataset",
    "DatasetError",
    "Event",
    "Instance",
    "Question",
    "load_jsonl",
    "load_locomo",
    "load_longmemeval",
]
