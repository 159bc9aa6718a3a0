"""The run store: one folder per run, the contract between training, sweeps and analysis (see ``contract``).

Importing it loads neither torch nor Lightning; the Lightning logger that writes into it is ``store.logger``.
"""

from experiments.store.contract import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    EVAL_COLUMNS,
    METRIC_COLUMNS,
    METRICS_FILE,
    MODEL_FILE,
    RESPONSE_COLUMNS,
    RESPONSES_FILE,
    SIGNAL_COLUMNS,
    SIGNAL_STATS,
    SIGNALS_FILE,
    STATUS_FAILED,
    STATUS_FINISHED,
    STATUS_RUNNING,
    STATUSES,
    SUMMARY_FILE,
    TRAIN_COLUMNS,
    WANDB_ID_FILE,
)
from experiments.store.rundir import (
    RunDir,
    atomic_write_json,
    atomic_write_text,
    list_runs,
    other_kind_checkpoints,
    read_csv_rows,
    read_json,
    read_last_row,
)

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "EVAL_COLUMNS",
    "METRICS_FILE",
    "METRIC_COLUMNS",
    "MODEL_FILE",
    "RESPONSES_FILE",
    "RESPONSE_COLUMNS",
    "SIGNALS_FILE",
    "SIGNAL_COLUMNS",
    "SIGNAL_STATS",
    "STATUSES",
    "STATUS_FAILED",
    "STATUS_FINISHED",
    "STATUS_RUNNING",
    "SUMMARY_FILE",
    "TRAIN_COLUMNS",
    "WANDB_ID_FILE",
    "RunDir",
    "atomic_write_json",
    "atomic_write_text",
    "list_runs",
    "other_kind_checkpoints",
    "read_csv_rows",
    "read_json",
    "read_last_row",
]
