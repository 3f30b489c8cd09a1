"""NMTune's total cost (feature extraction included) relative to LP's, on one task, in one run.

Both start from an empty feature cache: LP extracts eval-transform features of train/val/test and
trains a linear head; NMTune extracts the same plus K augmented views of the train split and trains
its MLP. Goal at K = 1: <= 1.3x LP.

    python benchmarks/nmtune_cost.py --model nmlbench-out/ckpt/tinyresnet.mini_sym0_s0 --k 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import eval_feats, labels, load_task, test_top1, timed  # noqa: E402

from nmlbench.config import replace  # noqa: E402
from nmlbench.features import FeatureConfig, FeatureStore, split_ref  # noqa: E402
from nmlbench.models import load_backbone  # noqa: E402
from nmlbench.tuning import TUNERS, FeatureData  # noqa: E402


def run(method: str, bb, spec, splits, k: int | None, epochs: int) -> tuple[float, float]:
    """Wall time from an empty cache to a fitted model, and its test top-1."""
    with tempfile.TemporaryDirectory() as root:

        def work():
            store = FeatureStore(bb, FeatureConfig(), root)
            feats = eval_feats(store, spec, splits)
            views = None
            if k is not None:
                views = store.view_source(
                    splits["train"], split_ref(spec.name, spec.version, "train", splits["train"]), k
                )
            cfg = TUNERS.get(method).Config()
            cfg = replace(cfg, epochs=epochs, **({"views": k} if k is not None else {}))
            data = FeatureData(
                feats["train"],
                labels(splits["train"]),
                feats["val"],
                labels(splits["val"]),
                spec.num_classes,
                views,
            )
            return TUNERS.get(method)(cfg).fit(data, 0), feats

        (fitted, feats), seconds = timed(work)
        return seconds, test_top1(fitted, feats["test"], splits["test"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tinyresnet")
    ap.add_argument("--task", default="mini-objects")
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    bb = load_backbone(args.model, pretrained=False)
    spec, splits = load_task(args.task)
    t_lp, a_lp = run("lp", bb, spec, splits, None, args.epochs)
    t_nm, a_nm = run("nmtune", bb, spec, splits, args.k, args.epochs)
    print(f"model {bb.name}  task {spec.name}  epochs {args.epochs}  K {args.k}")
    print(f"lp      total {t_lp:7.2f} s  top1 {a_lp:6.2f}")
    print(f"nmtune  total {t_nm:7.2f} s  top1 {a_nm:6.2f}")
    print(f"nmtune / lp cost ratio: {t_nm / t_lp:.2f}x")


if __name__ == "__main__":
    main()
