"""W&B's sweep engine (the ``sweeps`` package) on sweep configs, for ``test_engine_parity.py``.

Runs in its own environment (``sweeps`` pins old dependencies), so it imports nothing from this project:

    python -m venv /tmp/sweeps-env && /tmp/sweeps-env/bin/pip install sweeps==0.2.0
    echo '[{"id": "a", "config": {...}, "n": 50}]' | /tmp/sweeps-env/bin/python tests/sweeps_engine.py

Reads a JSON list of cases and writes, per case, whether the engine accepts the config and the points it makes:
for grid, every point in the engine's order (the first ``run_cap``, which W&B's server applies); for random and
bayes, ``n`` suggestions. Each point is a list of ``[name, value]`` in the engine's order; ``run_cap`` is dropped
before validation, since the server, not the package's schema, knows it.
"""

import json
import sys
import warnings


def plain(value):
    """numpy scalars and arrays as Python values, so JSON keeps 20 and 20.0 apart."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def run_case(case):
    import sweeps

    config = dict(case["config"])
    cap = config.pop("run_cap", None)
    method = config.get("method")
    try:
        sweeps.SweepConfig(config)
        n = cap or case.get("n", 1)
        if method == "grid":
            found, runs = [], []
            while cap is None or len(found) < cap:
                (run,) = sweeps.next_runs(config, runs, validate=True, n=1)
                if run is None:
                    break
                runs.append(run)
                found.append(run)
        else:
            found = sweeps.next_runs(config, [], validate=True, n=n)
    except Exception as e:  # the engine's refusal, whatever its type
        return {"id": case["id"], "valid": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
    points = [[[k, plain(v["value"])] for k, v in run.config.items()] for run in found]
    return {"id": case["id"], "valid": True, "points": points}


def main():
    warnings.simplefilter("ignore")
    cases = json.load(sys.stdin)
    json.dump([run_case(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
