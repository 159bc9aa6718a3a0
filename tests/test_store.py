"""The run store's CSV files: appended row by row, torn rows never read, one row per step after compaction."""

import csv
import multiprocessing as mp

import pytest

from experiments import store
from experiments.config import config_from_dict
from experiments.store import METRIC_COLUMNS, RESPONSE_COLUMNS, RunDir
from experiments.store.logger import RunStoreLogger
from experiments.sweep.runner import _progress_of
from experiments.sweep.spec import SweepRun
from tests.helpers import tiny

HEADER = ",".join(METRIC_COLUMNS) + "\n"


def raw_rows(path) -> list[list[str]]:
    """The file's rows as written, header included, without the store's merging."""
    with open(path, newline="") as f:
        return list(csv.reader(f))


def train_row(step: int) -> dict:
    return {"epoch": step / 100, "train_error": 50.0 - step / 10, "train_loss": 1.5, "lr": 0.1, "images_per_s": 900.0}


def test_logging_appends_and_a_step_logged_twice_reads_as_one_row(tmp_path):
    run = RunDir(tmp_path / "run")
    run.log_metrics(10, train_row(10))
    inode = run.metrics_path.stat().st_ino
    for step, values in [(20, train_row(20)), (20, {"test_error": 40.0, "test_loss": 1.25}), (30, train_row(30))]:
        before = run.metrics_path.read_bytes()
        run.log_metrics(step, values)
        assert run.metrics_path.read_bytes().startswith(before), "appended, not rewritten"
    assert run.metrics_path.stat().st_ino == inode
    rows = raw_rows(run.metrics_path)
    assert rows[0] == list(METRIC_COLUMNS) and {len(r) for r in rows} == {len(METRIC_COLUMNS)}
    assert [r[0] for r in rows[1:]] == ["10", "20", "20", "30"], "the second row of step 20 is the merged one"
    expected = [{c: None for c in METRIC_COLUMNS} | {"step": s} | train_row(s) for s in (10, 20, 30)]
    expected[1] |= {"test_error": 40.0, "test_loss": 1.25}
    assert run.read_metrics() == expected
    run.compact()
    assert [r[0] for r in raw_rows(run.metrics_path)[1:]] == ["10", "20", "30"]
    assert run.read_metrics() == expected


def test_a_torn_last_row_is_never_read_and_the_next_append_cuts_it_off(tmp_path):
    run = RunDir(tmp_path / "run")
    for step in (10, 20):
        run.log_metrics(step, train_row(step))
    with run.metrics_path.open("ab") as f:
        f.write(b"30,0.3,47.0,1.")  # a crash mid-append
    assert [r["step"] for r in run.read_metrics()] == [10, 20]
    assert run.last_step() == 20
    RunDir(run.path).log_metrics(30, train_row(30))  # the resumed process
    assert [r[0] for r in raw_rows(run.metrics_path)] == ["step", "10", "20", "30"]
    assert run.read_metrics()[-1]["train_loss"] == 1.5


def test_a_torn_header_is_rewritten(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.metrics_path.write_text("step,epo")
    assert run.read_metrics() == [] and run.last_step() is None
    run.log_metrics(10, {"train_error": 5.0})
    assert run.metrics_path.read_text() == HEADER + "10,,5.0" + "," * 9 + "\n"


def test_truncate_after_keeps_each_step_up_to_the_checkpoint_once_in_order(tmp_path):
    run = RunDir(tmp_path / "run")
    for step in (10, 20, 30):
        run.log_metrics(step, train_row(step))
        run.log_metrics(step, {"test_error": 30.0})
        run.log_responses(step, [(1, "bn1", 1.0), (2, "stages.0.0.bn1", 2.0)])
    with run.metrics_path.open("a") as f:
        f.write("40,0.4,4")
    resumed = RunDir(run.path)
    resumed.truncate_after(20)
    assert [r[0] for r in raw_rows(run.metrics_path)] == ["step", "10", "20"]
    assert [(r[0], r[1]) for r in raw_rows(run.responses_path)] == [
        ("step", "layer"), ("10", "1"), ("10", "2"), ("20", "1"), ("20", "2"),
    ]  # fmt: skip
    resumed.log_metrics(20, {"val_error": 35.0})  # a validation the checkpoint did not see, at its step
    resumed.log_metrics(30, train_row(30))
    rows = run.read_metrics()
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert (rows[1]["train_error"], rows[1]["test_error"], rows[1]["val_error"]) == (48.0, 30.0, 35.0)


def test_responses_logged_again_at_a_step_replace_its_rows(tmp_path):
    run = RunDir(tmp_path / "run")
    run.log_responses(100, [(1, "bn1", 1.0), (2, "stages.0.0.bn1", 2.0)])
    run.log_responses(200, [(1, "bn1", 3.0), (2, "stages.0.0.bn1", 4.0)])
    run.log_responses(200, [(1, "bn1", 5.0), (2, "stages.0.0.bn1", 6.0)])
    assert len(raw_rows(run.responses_path)) == 7, "appended"
    expected = [
        {"step": 100, "layer": 1, "name": "bn1", "std": 1.0},
        {"step": 100, "layer": 2, "name": "stages.0.0.bn1", "std": 2.0},
        {"step": 200, "layer": 1, "name": "bn1", "std": 5.0},
        {"step": 200, "layer": 2, "name": "stages.0.0.bn1", "std": 6.0},
    ]
    assert run.read_responses() == expected
    run.compact()
    assert raw_rows(run.responses_path)[0] == list(RESPONSE_COLUMNS) and len(raw_rows(run.responses_path)) == 5
    assert run.read_responses() == expected


def test_a_file_with_other_columns_or_an_unknown_column_is_refused_and_nothing_is_written(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.metrics_path.write_text("step,error\n10,5.0\n")
    with pytest.raises(ValueError, match=r"has columns 'step,error', not the store's 'step,epoch,") as info:
        run.log_metrics(20, {"train_error": 4.0})
    assert "\n" not in str(info.value) and run.metrics_path.read_text() == "step,error\n10,5.0\n"
    fresh = RunDir(tmp_path / "fresh")
    with pytest.raises(KeyError, match="unknown metric column"):
        fresh.log_metrics(10, {"train_err": 4.0})
    assert not fresh.metrics_path.exists()


def test_last_step_reads_only_the_tail_and_skips_a_torn_row(tmp_path):
    run = RunDir(tmp_path / "run")
    assert run.last_step() is None
    run.log_metrics(1, {"train_error": 9.0})
    with run.metrics_path.open("ab") as f:
        f.write(b"\xff" * 100_000 + b"\n")  # not UTF-8: parsing the whole file would fail
    for step in range(2, 6):
        run.log_metrics(step, {"train_error": 9.0})
    with run.metrics_path.open("ab") as f:
        f.write(b"6,0.")
    with pytest.raises(UnicodeDecodeError):
        run.read_metrics()
    assert run.last_step() == 5
    names = RunDir(tmp_path / "long")
    names.log_responses(7, [(1, "x" * 10_000, 1.0)])  # one row longer than the first block read
    assert store.read_last_row(names.responses_path) == {"step": 7, "layer": 1, "name": "x" * 10_000, "std": 1.0}


def test_header_only_or_missing_files_have_no_last_row(tmp_path):
    run = RunDir(tmp_path / "run")
    run.truncate_after(0)
    assert run.metrics_path.read_text() == HEADER
    assert store.read_last_row(run.metrics_path) is None and store.read_last_row(tmp_path / "nothing") is None


def test_sweep_progress_is_the_slowest_members_last_step_without_parsing_whole_files(tmp_path, monkeypatch):
    cfg = config_from_dict(tiny(arch="pair", max_steps=500, runs_dir=str(tmp_path)))
    run = SweepRun(params={}, extras={}, config=cfg)
    plain, resnet = (RunDir(d) for d in run.dirs)
    assert _progress_of(run) == (0, 500)
    for step in range(10, 301, 10):
        plain.log_metrics(step, {"train_error": 1.0})
        if step <= 200:
            resnet.log_metrics(step, {"train_error": 1.0})

    def whole_file(*args, **kwargs):
        raise AssertionError("progress parsed a whole metrics file")

    monkeypatch.setattr(store, "read_csv_rows", whole_file)
    assert _progress_of(run) == (200, 500)


def test_the_logger_leaves_one_row_per_step_when_training_ends(tmp_path):
    runs = {"plain": RunDir(tmp_path / "plain"), "resnet": RunDir(tmp_path / "resnet")}
    logger = RunStoreLogger(runs)
    for step in (10, 20):
        logger.log_metrics({"plain/train_error": 5.0, "resnet/train_error": 4.0}, step=step)
        logger.log_metrics({"plain/test_error": 6.0, "resnet/test_error": 3.0}, step=step)
    logger.finalize("success")
    for run in runs.values():
        assert [r[0] for r in raw_rows(run.metrics_path)] == ["step", "10", "20"]
    assert [r["test_error"] for r in runs["resnet"].read_metrics()] == [3.0, 3.0]


def _write_steps(path, steps: int) -> None:
    run = RunDir(path)
    for step in range(1, steps + 1):
        run.log_metrics(step, train_row(step))
        if step % 5 == 0:
            run.log_metrics(step, {"test_error": 30.0})
            run.log_responses(step, [(layer, f"l{layer}", 1.0) for layer in range(1, 20)])


@pytest.mark.integration
def test_a_reader_during_appends_sees_only_whole_rows(tmp_path):
    path = tmp_path / "run"
    RunDir(path).truncate_after(0)
    writer = mp.get_context("fork").Process(target=_write_steps, args=(path, 1000))
    writer.start()
    reads, last = 0, 0
    while writer.is_alive():
        rows = RunDir(path).read_metrics()
        assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
        assert all(r["train_loss"] == 1.5 for r in rows), "every row read is whole"
        assert (RunDir(path).last_step() or 0) >= last
        last = rows[-1]["step"] if rows else 0
        reads += 1
    writer.join()
    assert writer.exitcode == 0 and reads > 0
    assert [r["step"] for r in RunDir(path).read_metrics()] == list(range(1, 1001))
