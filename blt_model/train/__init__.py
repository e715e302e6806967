"""Training from plain text files, in the order a run goes (docs/architecture.md, "File layout"):

  documents.py  reading files, directories, globs, JSON lines, hf: datasets -> documents (bytes)
  data.py       windows, batches and loaders over those documents
  config.py     TrainingConfig: hyper-parameters and budgets
  stages.py     train(): data, entropy model, threshold calibration, BLT
  finetune.py   finetune(): continue training a loaded model (examples.py: prompt/completion data)
  loop.py       one stage's loop: resume, steps, evaluation, saving (train_model, train_entropy_model)
  step.py       one optimizer step: gradient accumulation, DDP, CUDA out-of-memory back-off
  strategy.py   how a model is wrapped, saved, resumed: one process or DDP (sharding.py: FSDP2)
  memory.py     memory per process for fine-tuning (`blt info --train`)
  schedule.py   the learning-rate schedule (warmup, cosine over steps and/or time)
  state.py      TrainState and state.pt, the resume file
  reporting.py  TrainingReporter: what a run tells a person, as plain events (the library never prints)
  distributed.py  torchrun processes
  evaluation.py bits per byte and the other metrics, compressor baselines
"""

from .config import TrainingConfig
from .data import ByteDataset, DataError, DataStats, make_loader, read_documents, split_documents
from .distributed import setup_distributed, world_info
from .errors import RunFileError, TrainingError, TrainingInterrupted
from .finetune import FINETUNE_DEFAULTS, FinetuneOptions, FinetuneResult, finetune
from .loop import train_entropy_model, train_model
from .memory import TrainingMemory, training_memory
from .reporting import DataSummary, StageOutcome, TrainingReporter
from .schedule import LearningRateSchedule, lr_factor
from .stages import TrainResult, calibrate_entropy_threshold, train
from .state import TrainState, load_state

__all__ = [
    "FINETUNE_DEFAULTS", "ByteDataset", "DataError", "DataStats", "DataSummary", "FinetuneOptions", "FinetuneResult",
    "LearningRateSchedule", "RunFileError", "StageOutcome", "TrainResult", "TrainState", "TrainingConfig",
    "TrainingError", "TrainingInterrupted", "TrainingMemory", "TrainingReporter", "calibrate_entropy_threshold",
    "finetune", "load_state", "lr_factor", "make_loader", "read_documents", "setup_distributed", "split_documents",
    "train", "train_entropy_model", "train_model", "training_memory", "world_info",
]
