"""The run store's contract: its layout, file names, columns and statuses, torch-free so analysis needs no torch.

Training writes through ``experiments.store.rundir.RunDir``, analysis reads through it; both take the names here.
The config's field names (``FIELD_NAMES``, the columns of ``config.json`` and of the analysis runs table), the pair's
member names and the dataset families come from ``experiments.config`` and are part of this contract.

Layout of ``runs/<sweep>/<run>/``:

- ``config.json``: the full resolved run config.
- ``metrics.csv``: one row per logged step (``METRIC_COLUMNS``); eval columns are empty between evaluations.
- ``responses.csv``: layer-response std per evaluation point (``RESPONSE_COLUMNS``).
- ``signals.csv``: forward and backward signal statistics per layer at step 0 and at every evaluation point
  (``SIGNAL_COLUMNS``, long format: one row per step, statistic and layer; the statistics: ``SIGNAL_STATS``).
- ``summary.json``: status (running / finished / failed), reason, final numbers, timing, counts, versions.
- ``checkpoints/``: Lightning checkpoints (``step=<N>.ckpt``), ``model.pt`` (the final weights) and
  ``wandb_run_id.txt``.
- ``wandb/``: W&B's own files, when W&B logging is on (``list_runs`` never takes it for a run).

The JSON files are replaced atomically (written to a temporary name, then renamed). The CSV files grow by whole
rows, appended with one write each, so logging step 60,000 costs what logging step 100 does; every row has every
column of the file. A reader takes a file up to its last newline, so a row being appended, or torn by a crash,
is never read as data, even with several writers in one store; the next append cuts a torn row off.
A step logged twice (training numbers, then the evaluation at the same step) is appended twice, the second row
complete; the readers merge a step's rows, and ``RunDir.compact`` (on resume and when training ends) rewrites
the files with one row per step.
"""

from __future__ import annotations

from experiments.config.parse import FIELD_NAMES
from experiments.config.schema import PAIR_MEMBERS, family_of

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
RESPONSES_FILE = "responses.csv"
SIGNALS_FILE = "signals.csv"
SUMMARY_FILE = "summary.json"
CHECKPOINT_DIR = "checkpoints"
WANDB_ID_FILE = "wandb_run_id.txt"
MODEL_FILE = "model.pt"
RESTARTED_DIR = ".restarted"
"""Where ``--restart`` moves a run's old folder, beside it in the sweep folder (hidden, so no reader takes it)."""

TRAIN_COLUMNS = ("train_error", "train_loss", "lr", "images_per_s")
EVAL_COLUMNS = (
    "val_error",
    "val_top5_error",
    "val_loss",
    "test_error",
    "test_top5_error",
    "test_loss",
)
METRIC_COLUMNS = ("step", "epoch", *TRAIN_COLUMNS, *EVAL_COLUMNS)
TEST10CROP_COLUMNS = ("test10crop_error", "test10crop_top5_error")
"""The final 10-crop test (imagenet and folder with ``test_crops`` 10, Tables 2-3): in ``summary.json`` only, as
``final_<column>``; never a metrics.csv column."""
ERROR_NAMES = {
    "train_error": "training error",
    "val_error": "validation error",
    "test_error": "test error",
    "test10crop_error": "10-crop test error",
}
"""The one name of each error number, in every table, figure, sentence and the runner's summary; top-5 columns
(``*_top5_error``) are "top-5 " plus the name, and validation on the ImageNet family is ``CENTRE_CROP_VAL``."""
CENTRE_CROP_VAL = "centre-crop validation error"
"""The ImageNet family's validation error: one 224 (or ``image_size``) centre crop per image (Sec. 3.4)."""


def error_name(column: str, family: str = "cifar10") -> str:
    """The name of an error column ("val_error", "test10crop_top5_error", ...) for a net of ``family``."""
    base = column.replace("_top5", "")
    name = CENTRE_CROP_VAL if base == "val_error" and family == "imagenet" else ERROR_NAMES[base]
    return f"top-5 {name}" if "_top5" in column else name


RESPONSE_COLUMNS = ("step", "layer", "name", "std")
SIGNAL_COLUMNS = ("step", "layer", "name", "stat", "value")
SIGNAL_STATS = {
    "act_grad_norm": "norm of the loss gradient w.r.t. the block output (layer 0: the stem output, the first block's "
    "input)",
    "act_mean_sq": "average over channels of the squared channel mean of the block output",
    "act_var": "average over channels of the channel variance of the block output",
    "branch_mean_sq": "average squared channel mean of a residual block's branch, before the addition (ResNets)",
    "branch_var": "average channel variance of a residual block's branch, before the addition (ResNets)",
    "weight_grad_norm": "norm of the loss gradient w.r.t. a conv weight (layer: the conv's place in network order)",
    "weight_norm": "norm of that conv weight",
    "weight_grad_ratio": "weight_grad_norm / weight_norm",
}
"""The statistics of ``signals.csv`` (``models.signals`` computes them): the ``stat`` column's values, with their
meaning. ``act_*`` and ``branch_*`` rows are numbered by block (0 = stem output), ``weight_*`` rows by conv."""

STATUS_RUNNING = "running"
STATUS_FINISHED = "finished"
STATUS_FAILED = "failed"
STATUSES = (STATUS_RUNNING, STATUS_FINISHED, STATUS_FAILED)

__all__ = [
    "CHECKPOINT_DIR",
    "CENTRE_CROP_VAL",
    "CONFIG_FILE",
    "ERROR_NAMES",
    "EVAL_COLUMNS",
    "FIELD_NAMES",
    "METRICS_FILE",
    "METRIC_COLUMNS",
    "MODEL_FILE",
    "PAIR_MEMBERS",
    "RESPONSES_FILE",
    "RESPONSE_COLUMNS",
    "RESTARTED_DIR",
    "SIGNALS_FILE",
    "SIGNAL_COLUMNS",
    "SIGNAL_STATS",
    "STATUSES",
    "STATUS_FAILED",
    "STATUS_FINISHED",
    "STATUS_RUNNING",
    "SUMMARY_FILE",
    "TEST10CROP_COLUMNS",
    "TRAIN_COLUMNS",
    "WANDB_ID_FILE",
    "error_name",
    "family_of",
]
