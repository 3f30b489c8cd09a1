"""NMTune's total cost (feature extraction included) relative to LP's, on one task, in one run.

Each method starts from an empty feature cache and gets what the evaluation stage gives it
(`Tuner.uses_train_features`): LP extracts eval-transform features of train/val/test and trains a
linear head; NMTune extracts val/test eval features plus K augmented views of train (no eval
features of train) and trains its MLP. At K = 1 both run the backbone once over every split.
Goal at K = 1: <= 1.3x LP.

    python benchmarks/nmtune_cost.py                      # resnet18 (random init), 224 px, K = 1, 2
    python benchmarks/nmtune_cost.py --model resnet50 --n-train 256 --n-val 128 --n-test 256
    python benchmarks/nmtune_cost.py --model tinytext --size 0 --task mini-text-topics   # text features
    python benchmarks/nmtune_cost.py --model CKPT_DIR --size 0 --task mini-text-topics   # a text checkpoint

Text models tokenize (the eval features) and tokenize with token dropout (NMTune's views) instead
of resizing; `--size 0` keeps their own tokens per sample.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import add_setting_args, labels, setting, test_top1, timed  # noqa: E402

from nmlbench.config import replace  # noqa: E402
from nmlbench.features import FeatureConfig, FeatureStore, split_ref  # noqa: E402
from nmlbench.tuning import TUNERS, FeatureData  # noqa: E402


def run(method: str, bb, spec, splits, k: int | None, epochs: int) -> tuple[float, float, float]:
    """(total seconds from an empty cache to a fitted model, of which extraction, test top-1)."""
    tuner_cls = TUNERS.get(method)
    cfg = replace(tuner_cls.Config(), epochs=epochs, **({"views": k} if k is not None else {}))
    with tempfile.TemporaryDirectory() as root:

        def extract():
            store = FeatureStore(bb, FeatureConfig(), root)
            ref = {s: split_ref(spec.name, spec.version, s, splits[s]) for s in splits}
            wanted = [s for s in splits if s != "train" or tuner_cls.uses_train_features]
            feats = {s: store.eval_features(splits[s], ref[s]) for s in wanted}
            views = store.view_source(splits["train"], ref["train"], k, seed=0) if k is not None else None
            return feats, views

        (feats, views), t_extract = timed(extract)
        data = FeatureData(
            feats.get("train"),
            labels(splits["train"]),
            feats["val"],
            labels(splits["val"]),
            spec.num_classes,
            views,
        )
        fitted, t_fit = timed(tuner_cls(cfg).fit, data, 0)
        return t_extract + t_fit, t_extract, test_top1(fitted, feats["test"], splits["test"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_setting_args(ap, n_train=512, n_val=256, n_test=512, size=224)
    ap.add_argument("--ks", default="1,2")
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    bb, spec, splits = setting(args)
    print(f"epochs {args.epochs}; one seed; times from an empty cache")
    t_lp, x_lp, a_lp = run("lp", bb, spec, splits, None, args.epochs)
    print(f"lp          total {t_lp:7.2f} s (extraction {x_lp:6.2f} s)  top1 {a_lp:6.2f}")
    for k in [int(k) for k in args.ks.split(",")]:
        t_nm, x_nm, a_nm = run("nmtune", bb, spec, splits, k, args.epochs)
        print(
            f"nmtune K={k:<2} total {t_nm:7.2f} s (extraction {x_nm:6.2f} s)  top1 {a_nm:6.2f}  "
            f"cost / lp {t_nm / t_lp:.2f}x  (extraction {x_nm / x_lp:.2f}x)"
        )


if __name__ == "__main__":
    main()
