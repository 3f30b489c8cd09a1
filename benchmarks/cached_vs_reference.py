"""Cached augmented views vs the reference protocol (fresh views through the backbone every step).

For MLP and NMTune on one task: wall time (view extraction included) and test top-1 of the
reference protocol and of K = 1, 2, 4, 8 cached views, in one run. Prints speed ratios and
accuracy differences (goal at the default K: >= 20x faster, within 0.5 point).

    python benchmarks/cached_vs_reference.py --model nmlbench-out/ckpt/tinyresnet.mini_sym0_s0
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tinyresnet", help="checkpoint dir or model name (names: random init)")
    ap.add_argument("--task", default="mini-objects")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--ks", default="1,2,4,8")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--methods", default="mlp,nmtune")
    args = ap.parse_args()
    torch.set_num_threads(1)
    bb = load_backbone(args.model, pretrained=False)
    spec, splits = load_task(args.task)
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as root:
        store = FeatureStore(bb, FeatureConfig(), root)
        feats = eval_feats(store, spec, splits)
        ref = split_ref(spec.name, spec.version, "train", splits["train"])
        print(
            f"model {bb.name}  task {spec.name}  n_train {len(splits['train'].labels)}  epochs {args.epochs}"
        )
        print(f"{'method':8} {'K':>4} {'time_s':>8} {'extract_s':>9} {'speedup':>8} {'top1':>7} {'diff':>6}")
        for method in args.methods.split(","):
            rows = {}
            for k in [0] + [int(k) for k in args.ks.split(",")]:
                # each K is timed from an empty view cache: its own extraction cost is included
                with tempfile.TemporaryDirectory() as kroot:
                    kstore = FeatureStore(bb, FeatureConfig(), kroot)
                    views, t_extract = timed(kstore.view_source, splits["train"], ref, k)
                cfg = replace(TUNERS.get(method).Config(), epochs=args.epochs, views=k)
                accs, t_fit = [], 0.0
                for seed in seeds:
                    data = FeatureData(
                        feats["train"],
                        labels(splits["train"]),
                        feats["val"],
                        labels(splits["val"]),
                        spec.num_classes,
                        views,
                    )
                    fitted, t = timed(TUNERS.get(method)(cfg).fit, data, seed)
                    t_fit += t
                    accs.append(test_top1(fitted, feats["test"], splits["test"]))
                rows[k] = (t_extract + t_fit / len(seeds), sum(accs) / len(accs), t_extract)
                base_t, base_acc, _ = rows[0]
                label = "ref" if k == 0 else str(k)
                t, acc, t_ex = rows[k]
                speed = base_t / t
                diff = acc - base_acc
                print(f"{method:8} {label:>4} {t:8.2f} {t_ex:9.2f} {speed:7.1f}x {acc:7.2f} {diff:+6.2f}")


if __name__ == "__main__":
    main()
