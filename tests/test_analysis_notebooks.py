"""The analysis notebooks run top to bottom on a small store the test writes, and are committed without outputs."""

from __future__ import annotations

import os

import nbformat
import pytest
from ipykernel.kernelspec import install
from nbclient import NotebookClient

from tests.analysis_fixtures import write_store
from tests.helpers import REPO

NOTEBOOKS = sorted((REPO / "analysis" / "notebooks").glob("*.ipynb"))
KERNEL = "python3"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("notebook-store"))


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """Kernel environment: the repo on the path, and a python3 kernelspec (in tmp) that runs this interpreter."""
    prefix = tmp_path_factory.mktemp("kernels")
    install(kernel_name=KERNEL, prefix=str(prefix))
    return {
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "JUPYTER_PATH": os.pathsep.join([str(prefix / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")]),
    }


def test_the_four_notebooks_exist():
    assert [p.stem for p in NOTEBOOKS] == ["fig4", "fig6", "fig7", "shortcuts"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert "DEGRADATION_RUNS" in code[0].source and "parameters" in code[0].metadata.get("tags", [])


@pytest.mark.integration
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_on_a_small_store(path, store, kernel_env, tmp_path, monkeypatch):
    for key, value in {**kernel_env, "DEGRADATION_RUNS": str(store)}.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, kernel_name=KERNEL, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "a figure is displayed"


@pytest.mark.integration
def test_a_relative_runs_folder_is_read_from_where_the_user_started_jupyter(store, kernel_env, tmp_path, monkeypatch):
    """``DEGRADATION_RUNS=runs/demo jupyter nbconvert --execute ...`` from the repository: the kernel runs in the
    notebook's folder, but the path is the user's."""
    for key, value in {**kernel_env, "DEGRADATION_RUNS": store.name, "PWD": str(store.parent)}.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(REPO / "analysis" / "notebooks" / "fig7.ipynb", as_version=4)
    NotebookClient(notebook, kernel_name=KERNEL, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
