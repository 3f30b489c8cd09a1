"""The fast protocol (K cached views) against the reference protocol (fresh views), side by side.

For LP, MLP and NMTune on two backbones nmlbench pretrains itself — (1) `tinyresnet` trained on
real CIFAR-10 images (../shared/data, `nmlbench pretrain --set data.source=npz`) and evaluated on a
real downstream task (Fashion-MNIST, written as an npz task YAML), (2) the mini upstream (a 0 %
noise `mini-resnet` checkpoint) on a mini task — and several tuning seeds:

- reference: the `reference` preset (`views: 0`: two fresh augmentations of each image through the
  frozen backbone at every step; joint BatchNorm; last epoch reported);
- fast: the same settings with `views: K` (K cached augmented views per image and tuning seed,
  extracted once), K = 1, 2, 4, 8.

LP does not read views, so it is the same under both protocols (the anchor of the cost ratio).
Printed per backbone: test top-1 mean ± sd over the seeds, its difference to the reference and
whether it lies inside the reference's seed range; the NMTune−MLP gap (per seed, same seed for
both) under each protocol; backbone work (images through the frozen backbone, val/test included)
and wall time relative to the reference and to LP. Markdown on stdout, all numbers in `--out`.

    python benchmarks/fast_vs_reference.py --quick                  # CPU smoke run, ~2 min
    python benchmarks/fast_vs_reference.py --out fvr.json           # the default (CPU: ~10 CPU-min)
    python benchmarks/fast_vs_reference.py --device cuda --n-train 5000 --epochs 30 --pretrain-epochs 15
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import DATA, labels, test_top1  # noqa: E402

from nmlbench.config import replace  # noqa: E402
from nmlbench.eval.config import load_eval_config  # noqa: E402
from nmlbench.features import CachedViews, FeatureStore, split_ref  # noqa: E402
from nmlbench.models import load_backbone  # noqa: E402
from nmlbench.tasks import get_task, load_split  # noqa: E402
from nmlbench.tuning import TUNERS, FeatureData  # noqa: E402

PROTOCOL_METHODS = ("mlp", "nmtune")  # the methods whose protocol differs
COST = ("cpu_s", "wall_s", "images")


def pretrain(work: Path, name: str, sets: list[str], device: str) -> Path:
    """A 0 %-noise `mini-resnet` run through the CLI (skipped when its checkpoint exists)."""
    root = work / name
    cmd = [sys.executable, "-m", "nmlbench", "pretrain", "--noise", "0", "--out", str(root)]
    for s in [*sets, f"device={device}"]:
        cmd += ["--set", s]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    ckpts = sorted(p.parent for p in (root / "ckpt").glob("*/checkpoint.json"))
    print(f"pretrained {name}: {ckpts[0].name} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return ckpts[0]


def subset_npz(path: Path, out: Path, n: int, seed: int, skip: int = 0) -> Path:
    """Rows [skip, skip+n) of a seeded permutation of an npz archive, written as a new archive."""
    z = np.load(path)
    idx = np.random.default_rng(seed).permutation(len(z["labels"]))[skip : skip + n]
    np.savez(out, images=z["images"][idx], labels=z["labels"][idx], classes=z["classes"])
    return out


def real_setting(args: argparse.Namespace, work: Path) -> tuple[Path, Path]:
    """(checkpoint, task YAML): tinyresnet pretrained on CIFAR-10, Fashion-MNIST downstream."""
    up = subset_npz(args.data / "cifar10_train.npz", work / "cifar10-up.npz", args.pretrain_images, 0)
    ckpt = args.real_ckpt or pretrain(
        work,
        "real",
        ["data.source=npz", f"data.path={up}", "data.name=cifar10", f"optim.epochs={args.pretrain_epochs}"],
        args.device,
    )
    fm = args.data / "fashionmnist_train.npz"
    files = {
        "train": subset_npz(fm, work / "fm-train.npz", args.n_train, 0),
        "val": subset_npz(fm, work / "fm-val.npz", args.n_val, 0, skip=args.n_train),
        "test": subset_npz(args.data / "fashionmnist_test.npz", work / "fm-test.npz", args.n_test, 1),
    }
    task = work / f"fashionmnist-{args.n_train}.yaml"
    task.write_text(
        "version: 1\nreader: npz\nnum_classes: 10\nparams:\n  files: {"
        + ", ".join(f"{s}: {p}" for s, p in files.items())
        + "}\ndescription: Fashion-MNIST subset written by benchmarks/fast_vs_reference.py\n",
        encoding="utf-8",
    )
    return Path(ckpt), task


def count_images(bb: Any) -> dict[str, int]:
    """Wrap `bb.features` so that every image through the frozen backbone is counted."""
    counter, features = {"images": 0}, bb.features

    def counted(x: torch.Tensor) -> torch.Tensor:
        counter["images"] += int(x.shape[0])
        return features(x)

    bb.features = counted
    return counter


def measure(fn: Any, counter: dict[str, int]) -> tuple[Any, np.ndarray]:
    """(fn(), cost): cost = [CPU seconds, wall seconds, images through the backbone].

    The ratios use this process's CPU time: on a shared machine wall time measures the neighbours
    as much as the method (one torch thread, no DataLoader workers, so CPU time is the work done).
    On a GPU the work is not CPU time: read the wall-time ratios there (`--device cuda` prints them).
    """
    before, cpu, wall = counter["images"], time.process_time(), time.perf_counter()
    out = fn()
    cost = [time.process_time() - cpu, time.perf_counter() - wall, counter["images"] - before]
    return out, np.array(cost, dtype=float)


def run_setting(label: str, ckpt: Path, task: str, args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    bb = load_backbone(ckpt).to(args.device)
    counter = count_images(bb)
    spec = get_task(task)
    splits = {s: load_split(spec, s) for s in ("train", "val", "test")}
    ref = {s: split_ref(spec.name, spec.version, s, splits[s]) for s in splits}
    sizes = {s: len(splits[s].labels) for s in splits}
    print(f"{label}: {bb.name} at {bb.image_size}px D={bb.feature_dim}; {spec.name} {sizes}", file=sys.stderr)
    overrides = [f"{m}.epochs={args.epochs}" for m in ("lp", *PROTOCOL_METHODS)] + [f"device={args.device}"]
    cfg = load_eval_config("reference", overrides=overrides)
    ks, seeds = args.ks, args.seeds
    with tempfile.TemporaryDirectory() as root:
        store = FeatureStore(bb, cfg.features, root)
        feats, extract = {}, {}  # eval features and the cost of extracting each split
        for s in splits:
            feats[s], extract[s] = measure(lambda s=s: store.eval_features(splits[s], ref[s]), counter)
        view_cost: dict[tuple[int, int], np.ndarray] = {}  # (seed, v) -> cost of one view of train
        views: dict[int, torch.Tensor] = {}
        for seed in seeds:
            vs = []
            for v in range(max(ks)):
                f, view_cost[seed, v] = measure(
                    lambda v=v, seed=seed: store.view(splits["train"], ref["train"], v, seed), counter
                )
                vs.append(f)
            views[seed] = torch.stack(vs)
        fresh = store.view_source(splits["train"], ref["train"], 0)

        def fit(method: str, k: int | None, seed: int) -> tuple[float, np.ndarray]:
            """(test top-1, cost of the fit; fresh views are inside it) of one run."""
            tuner_cls = TUNERS.get(method)
            mcfg = getattr(cfg, tuner_cls.config_key)
            source = None
            if k is not None:
                mcfg = replace(mcfg, views=k)
                source = fresh if k == 0 else CachedViews(views[seed][:k])
            train = feats["train"] if tuner_cls.uses_train_features else None
            data = FeatureData(
                train,
                labels(splits["train"]),
                feats["val"],
                labels(splits["val"]),
                spec.num_classes,
                source,
                args.device,
            )
            fitted, cost = measure(lambda: tuner_cls(mcfg).fit(data, seed), counter)
            return test_top1(fitted, feats["test"], splits["test"]), cost

        shared = extract["val"] + extract["test"]  # every protocol needs val/test eval features
        runs: dict[str, dict[str, Any]] = {}
        protocols: list[tuple[str, str, int | None]] = [("lp", "lp", None)]
        protocols += [(m, "reference", 0) for m in PROTOCOL_METHODS]
        protocols += [(m, f"K={k}", k) for m in PROTOCOL_METHODS for k in ks]
        for method, proto, k in protocols:
            accs, costs = [], []
            for s in seeds:
                acc, cost = fit(method, k, s)
                if k is None:  # LP: eval features of train
                    cost = cost + extract["train"]
                elif k > 0:  # its K cached views
                    cost = cost + sum(view_cost[s, v] for v in range(k))
                accs.append(acc)
                costs.append(cost)  # train side: the protocol's own work
            runs[f"{method}/{proto}"] = {
                "method": method,
                "protocol": proto,
                "k": k,
                "seeds": seeds,
                "top1": accs,
                "train_side": {n: [float(c[i]) for c in costs] for i, n in enumerate(COST)},
                "total": {n: [float(c[i] + shared[i]) for c in costs] for i, n in enumerate(COST)},
            }
            print(f"  {method:7} {proto:9} top1 {statistics.mean(accs):6.2f}", file=sys.stderr)
    return {
        "label": label,
        "model": bb.name,
        "checkpoint": str(ckpt),
        "image_size": bb.image_size,
        "feature_dim": bb.feature_dim,
        "task": spec.name,
        "sizes": sizes,
        "epochs": args.epochs,
        "device": args.device,
        "extract": {s: dict(zip(COST, map(float, c), strict=True)) for s, c in extract.items()},
        "runs": runs,
    }


def _ms(xs: list[float]) -> tuple[float, float]:
    return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def summarise(res: dict[str, Any], chosen_k: int) -> list[str]:
    """Markdown lines for one backbone; adds the derived numbers to `res['summary']`."""
    runs, out = res["runs"], []
    clock = "wall_s" if res["device"].startswith("cuda") else "cpu_s"
    mean = lambda r, part, n: statistics.mean(r[part][n])  # noqa: E731
    lp = runs["lp/lp"]
    out.append(
        f"**{res['label']}**: `{res['model']}` ({res['image_size']} px, D = {res['feature_dim']}), "
        f"task `{res['task']}` {res['sizes']}, {res['epochs']} epochs, seeds {lp['seeds']}; "
        f"time = {'wall' if clock == 'wall_s' else 'CPU'} seconds"
    )
    out += [
        "",
        "| method | protocol | top-1 | Δ vs ref | in ref range | less backbone work: train / total "
        "| less time: train / total | time / LP |",
        "|---|---|---|---|---|---|---|---|",
    ]
    summary: dict[str, Any] = {}
    for key, r in runs.items():
        m, sd = _ms(r["top1"])
        row = {"mean": m, "sd": sd, "time_vs_lp": mean(r, "total", clock) / mean(lp, "total", clock)}
        ref = runs.get(f"{r['method']}/reference")
        cells = ["—"] * 4
        if ref is not None and r["protocol"] != "reference":
            ratio = {
                f"{part}_{n}": mean(ref, part, n) / mean(r, part, n)
                for part in ("train_side", "total")
                for n in ("images", clock)
            }
            rm = statistics.mean(ref["top1"])
            inside = min(ref["top1"]) <= m <= max(ref["top1"])
            row |= {"delta": m - rm, "in_ref_range": inside, **ratio}
            cells = [
                f"{m - rm:+.2f}",
                "yes" if inside else "**no**",
                f"{ratio['train_side_images']:.1f}× / {ratio['total_images']:.1f}×",
                f"{ratio[f'train_side_{clock}']:.1f}× / {ratio[f'total_{clock}']:.1f}×",
            ]
        summary[key] = row
        out.append(
            f"| {r['method']} | {r['protocol']} | {m:.2f} ± {sd:.2f} | "
            + " | ".join(cells)
            + f" | {row['time_vs_lp']:.2f}× |"
        )
    out += [
        "",
        "| protocol | NMTune − MLP (same seeds, mean ± sd) | same sign as reference |",
        "|---|---|---|",
    ]
    gaps = {}
    for proto in ["reference"] + [f"K={k}" for k in sorted({r["k"] for r in runs.values() if r["k"]})]:
        d = [
            a - b for a, b in zip(runs[f"nmtune/{proto}"]["top1"], runs[f"mlp/{proto}"]["top1"], strict=True)
        ]
        gaps[proto] = _ms(d)
    ref_m, ref_sd = gaps["reference"]
    for proto, (m, sd) in gaps.items():
        if proto == "reference":
            same = "—"
        elif abs(ref_m) <= ref_sd:  # no sign to keep: the reference's gap is inside its own spread
            same = f"n/a (reference gap within ±{ref_sd:.2f})"
        else:
            same = "yes" if np.sign(m) == np.sign(ref_m) else "**no**"
        out.append(f"| {proto} | {m:+.2f} ± {sd:.2f} | {same} |")
    summary["gap"] = {p: {"mean": m, "sd": sd} for p, (m, sd) in gaps.items()}
    nm = runs.get(f"nmtune/K={chosen_k}")
    if nm:
        parts = {p: mean(nm, "total", p) / mean(lp, "total", p) for p in ("images", clock)}
        out += [
            "",
            f"At K = {chosen_k}, from an empty cache: NMTune costs {parts[clock]:.2f}× LP's time "
            f"and {parts['images']:.2f}× its backbone images (LP {mean(lp, 'total', clock):.1f} s, "
            f"{mean(lp, 'total', 'images'):,.0f} images; NMTune {mean(nm, 'total', clock):.1f} s, "
            f"{mean(nm, 'total', 'images'):,.0f} images).",
        ]
        summary["nmtune_vs_lp"] = parts
    res["summary"] = summary
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CPU smoke run: small splits, few epochs, K 1,2")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (pretraining and tuning)")
    ap.add_argument("--settings", default="real,mini", help="real (CIFAR-10 -> Fashion-MNIST), mini")
    ap.add_argument("--ks", default="1,2,4,8")
    ap.add_argument("--seeds", default="0,1,2", help="tuning seeds (>= 3 for a spread)")
    ap.add_argument("--chosen-k", type=int, default=2, help="the K whose cost against LP is judged")
    ap.add_argument("--epochs", type=int, default=30, help="LP, MLP and NMTune epochs (reference: 30)")
    ap.add_argument("--n-train", type=int, default=500, help="real task: train images")
    ap.add_argument("--n-val", type=int, default=500)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--pretrain-images", type=int, default=10000, help="CIFAR-10 train images")
    ap.add_argument("--pretrain-epochs", type=int, default=4, help="real and mini pretraining epochs")
    ap.add_argument("--mini-task", default="mini-objects")
    ap.add_argument("--real-ckpt", type=Path, help="reuse a checkpoint instead of pretraining")
    ap.add_argument("--mini-ckpt", type=Path, help="reuse a mini checkpoint instead of pretraining")
    ap.add_argument("--data", type=Path, default=DATA, help="folder with the ../shared/data archives")
    ap.add_argument("--work", type=Path, help="keep checkpoints and task files here (default: temporary)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", type=Path, help="write every number as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.ks, args.epochs, args.n_train, args.n_val, args.n_test = "1,2", 8, 200, 200, 500
        args.pretrain_images, args.pretrain_epochs = 2000, 1
    args.ks, args.seeds = [int(k) for k in args.ks.split(",")], [int(s) for s in args.seeds.split(",")]
    start, load0 = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = []
        for name in args.settings.split(","):
            if name == "real":
                ckpt, task = real_setting(args, work)
                results.append(run_setting("real: CIFAR-10 → Fashion-MNIST", ckpt, str(task), args))
            else:
                ckpt = args.mini_ckpt or pretrain(
                    work, "mini", [f"optim.epochs={args.pretrain_epochs}"], args.device
                )
                results.append(run_setting("mini upstream", ckpt, args.mini_task, args))
    lines = []
    for res in results:
        lines += summarise(res, args.chosen_k) + [""]
    total = time.perf_counter() - start
    lines += [
        "train: the protocol's own work (LP: eval features of train; fast: its K views; reference: the",
        "fresh views inside training) plus the training; total adds the val/test eval features every",
        "protocol needs. Ratios: reference / fast. In ref range: mean inside the reference's seed min-max.",
        "",
        f"Whole benchmark: {total:.0f} s wall on {args.device}, {args.threads} torch thread(s); "
        f"load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at the end.",
    ]
    print("\n".join(lines))
    if args.out:
        payload = {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "seconds": total,
            "settings": results,
        }
        args.out.write_text(json.dumps(payload, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
