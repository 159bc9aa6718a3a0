"""``python -m experiments.train`` that also records each run it really trains, for the many-runners tests.

``fit_and_record`` is reached only under the run's claim, after the "already finished" check: one line per training
in the file named by ``DEGRADATION_TRACE`` ("<run names> <pid>").
"""

import os
import sys

import experiments.train as train

_fit_and_record = train.fit_and_record


def traced(prep, parts):
    with open(os.environ["DEGRADATION_TRACE"], "a") as f:
        f.write(f"{'+'.join(r.name for r in prep.runs.values())} {os.getpid()}\n")
    return _fit_and_record(prep, parts)


if __name__ == "__main__":
    train.fit_and_record = traced
    sys.exit(train.main())
