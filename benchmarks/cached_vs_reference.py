"""Cached augmented views vs the reference protocol (fresh views through the backbone every step).

For MLP and NMTune on one task, in one run: wall time and test top-1 of the reference protocol
(`views: 0`, two fresh augmentations per image per step, 30 epochs) and of K = 1, 2, 4, 8 cached
views. Both protocols get the same data, epochs, seeds and eval features of val/test (extracted
once, reported apart: both need them). A cached run's time is the extraction of its K views (each
view is one backbone pass over train, timed once; view v is the same file for every K >= v+1)
plus its training. Goal at the default K (NMTuneConfig.views): >= 20x faster, within 0.5 point.

    python benchmarks/cached_vs_reference.py                      # resnet18 (random init), 112 px
    python benchmarks/cached_vs_reference.py --size 224 --methods nmtune --ks 1,2 --n-train 128
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import add_setting_args, eval_feats, labels, setting, test_top1, timed  # noqa: E402

from nmlbench.config import replace  # noqa: E402
from nmlbench.features import CachedViews, FeatureConfig, FeatureStore, split_ref  # noqa: E402
from nmlbench.tuning import TUNERS, FeatureData  # noqa: E402
from nmlbench.tuning.nmtune import NMTuneConfig  # noqa: E402


def fit(method: str, k: int, views, feats, splits, spec, epochs: int, seed: int) -> tuple[float, float]:
    """(seconds, test top-1) of one fit; the train eval features are not given (not used)."""
    cfg = replace(TUNERS.get(method).Config(), epochs=epochs, views=k)
    data = FeatureData(
        None, labels(splits["train"]), feats["val"], labels(splits["val"]), spec.num_classes, views
    )
    fitted, seconds = timed(TUNERS.get(method)(cfg).fit, data, seed)
    return seconds, test_top1(fitted, feats["test"], splits["test"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_setting_args(ap, n_train=256, n_val=256, n_test=1000, size=112)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--ks", default="1,2,4,8")
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the cached runs (cheap)")
    ap.add_argument("--ref-seeds", default="0", help="seeds of the reference runs (expensive)")
    ap.add_argument("--methods", default="mlp,nmtune")
    args = ap.parse_args()
    bb, spec, splits = setting(args)
    ks, seeds = [int(k) for k in args.ks.split(",")], [int(s) for s in args.seeds.split(",")]
    ref_seeds = [int(s) for s in args.ref_seeds.split(",")]
    default_k = NMTuneConfig().views
    with tempfile.TemporaryDirectory() as root:
        store = FeatureStore(bb, FeatureConfig(), root)
        evals = {s: splits[s] for s in ("val", "test")}
        feats, t_eval = timed(eval_feats, store, spec, evals)
        ref = split_ref(spec.name, spec.version, "train", splits["train"])
        view_s = []  # seconds to extract view v (one backbone pass over train)
        for v in range(max(ks)):
            view_s.append(timed(store.view, splits["train"], ref, v)[1])
        views = torch.stack([store.view(splits["train"], ref, v) for v in range(max(ks))])
        fresh = store.view_source(splits["train"], ref, 0)  # FreshViews: the backbone every step
    print(
        f"epochs {args.epochs}; eval features of val+test {t_eval:.1f} s (both protocols, excluded); "
        f"one view of train {statistics.mean(view_s):.2f} s; seeds: cached {seeds}, reference {ref_seeds}"
    )
    print(
        f"{'method':7} {'K':>4} {'extract_s':>9} {'train_s':>8} {'total_s':>8} {'speedup':>8} "
        f"{'w/ eval':>8} {'top1':>6} {'±sd':>5} {'diff':>6}"
    )
    for method in args.methods.split(","):
        runs = [fit(method, 0, fresh, feats, splits, spec, args.epochs, s) for s in ref_seeds]
        rows = {0: (0.0, statistics.mean(t for t, _ in runs), [a for _, a in runs])}
        for k in ks:
            runs = [
                fit(method, k, CachedViews(views[:k]), feats, splits, spec, args.epochs, s) for s in seeds
            ]
            rows[k] = (sum(view_s[:k]), statistics.mean(t for t, _ in runs), [a for _, a in runs])
        base_total, base_acc = rows[0][1], statistics.mean(rows[0][2])
        for k, (t_ex, t_fit, accs) in rows.items():
            total, acc = t_ex + t_fit, statistics.mean(accs)
            with_eval = (base_total + t_eval) / (total + t_eval)
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            label = "ref" if k == 0 else f"{k}{'*' if k == default_k else ''}"
            print(
                f"{method:7} {label:>4} {t_ex:9.2f} {t_fit:8.2f} {total:8.2f} {base_total / total:7.1f}x "
                f"{with_eval:7.1f}x {acc:6.2f} {sd:5.2f} {acc - base_acc:+6.2f}"
            )
    print("speedup: reference time / cached time (training + its view extraction); 'w/ eval' adds the")
    print("val+test eval-feature extraction to both; diff: top-1 minus the reference's; * = default K")


if __name__ == "__main__":
    main()
