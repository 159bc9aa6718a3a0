"""Export scikit-learn's handwritten digits as a class-per-folder tree of 8x8 grayscale PNGs, for ``--dataset folder``.

    python -m experiments.data.export_digits data/digits        # needs: pip install -e '.[examples]'

The digits (UCI's optical recognition set: 1,797 real 8x8 scans of 0-9, 16 grey levels) ship inside scikit-learn, so
nothing is downloaded. A fixed fifth of each class (seeded) goes to ``val/``, the rest to ``train/``:
``OUT/{train,val}/<digit>/<index>.png``, pixels scaled from 0..16 to 0..255.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

VAL_FRACTION = 0.2
"""The share of each class written to val/."""


def export_digits(out: str | Path, seed: int = 0) -> dict[str, int]:
    """Write the digits under ``out`` and return the number of images written to each split."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "val": 0}
    for label in range(10):
        index = rng.permutation(np.flatnonzero(digits.target == label))
        n_val = round(len(index) * VAL_FRACTION)
        for split, chosen in (("val", index[:n_val]), ("train", index[n_val:])):
            folder = Path(out) / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in sorted(chosen):
                pixels = np.round(digits.images[i] * (255 / 16)).astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
            counts[split] += len(chosen)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write train/ and val/ into")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    args = parser.parse_args(argv)
    try:
        counts = export_digits(args.out, args.seed)
    except ImportError:
        print("error: scikit-learn is needed: pip install -e '.[examples]'", file=sys.stderr)
        return 2
    print(f"wrote {counts['train']} train and {counts['val']} val images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
