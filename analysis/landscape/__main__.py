"""``python -m analysis.landscape PATH [options]`` (see ``analysis/landscape/cli.py``)."""

import sys

from analysis.landscape.cli import main

sys.exit(main())
