"""Evaluation on real pixels: random-init vs briefly trained (clean / noisy labels) tiny backbones.

Upstream: a Fashion-MNIST subset, symmetric label noise from nmlbench.noise, a short supervised
run of `nmlbench_tinyresnet`. Downstream, through the evaluation stage's feature cache and tuners:
ID CIFAR-10 and MNIST; OOD: the MNIST head tested on UCI digits (8x8 upsampled to 32x32).
Needs the real data files described in ../shared/data/README.md (pass --data DIR).

    python benchmarks/real_pixels.py --data ../shared/data --noise 0,0.4 --epochs 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import labels, test_top1, timed  # noqa: E402

import nmlbench.models.zoo  # noqa: E402,F401  (registers nmlbench_tinyresnet)
from nmlbench.config import replace  # noqa: E402
from nmlbench.features import FeatureConfig, FeatureStore, split_ref  # noqa: E402
from nmlbench.models.load import Backbone  # noqa: E402
from nmlbench.noise import NoiseConfig  # noqa: E402
from nmlbench.noise.apply import make_kind  # noqa: E402
from nmlbench.noise.base import make_table  # noqa: E402
from nmlbench.tuning import TUNERS, FeatureData  # noqa: E402

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


class ArraySplit:
    """An in-memory split with the task-split interface: split[i] -> (PIL RGB 32x32, label)."""

    def __init__(self, images: np.ndarray, labels_: np.ndarray, prefix: str) -> None:
        self.images, self.labels = images, labels_.astype(np.int64)
        self.ids = np.array([f"{prefix}/{i:06d}" for i in range(len(labels_))])

    def __getitem__(self, i: int):
        return Image.fromarray(self.images[i]).convert("RGB").resize((32, 32), Image.BILINEAR), int(
            self.labels[i]
        )


def load(data: Path, name: str, n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    z = np.load(data / f"{name}.npz")
    idx = np.random.default_rng(seed).permutation(len(z["labels"]))[:n]
    return z["images"][idx], z["labels"][idx]


def splits_of(images: np.ndarray, labels_: np.ndarray, name: str, n_train: int, n_val: int) -> dict:
    cut = [n_train, n_train + n_val]
    parts = zip(("train", "val", "test"), np.split(images, cut), np.split(labels_, cut), strict=True)
    return {s: ArraySplit(x, y, f"{name}/{s}") for s, x, y in parts}


def noisy(labels_: np.ndarray, rate: float) -> np.ndarray:
    """Exact symmetric label noise through nmlbench.noise (ids sort in sample order)."""
    if rate == 0:
        return labels_
    table = make_table([f"{i:06d}" for i in range(len(labels_))], labels_, [str(c) for c in range(10)])
    kind = make_kind(NoiseConfig("symmetric_label", rate))
    return kind.apply(table, rate, np.random.default_rng(0)).noisy_labels


def pretrain(images: np.ndarray, labels_: np.ndarray, epochs: int) -> torch.nn.Module:
    """A short supervised run (AdamW, batch 128) of the tiny timm ResNet on 32x32 inputs."""
    torch.manual_seed(0)
    model = timm.create_model("nmlbench_tinyresnet", num_classes=10)
    x = torch.tensor(
        np.stack([np.asarray(ArraySplit(images, labels_, "u")[i][0]) for i in range(len(labels_))])
    )
    x = ((x.permute(0, 3, 1, 2).float() / 255) - 0.5) / 0.25
    y = torch.as_tensor(labels_)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(128):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.reset_classifier(0)
    return model.eval()


def backbone(model: torch.nn.Module, name: str) -> Backbone:
    meta = {"image_size": 32, "mean": MEAN, "std": STD, "key": name, "provenance": {"name": name}}
    return Backbone(model, library="timm", arch="nmlbench_tinyresnet", name=name, ref=name, meta=meta)


def evaluate(bb: Backbone, tasks: dict, root: str, epochs: int) -> dict[str, float]:
    store = FeatureStore(bb, FeatureConfig(), root)
    out = {}
    for method in ("lp", "nmtune"):
        for task, splits in tasks.items():
            if task == "uci-digits":
                continue
            f = {s: store.eval_features(sp, split_ref(task, 1, s, sp)) for s, sp in splits.items()}
            cfg = replace(TUNERS.get(method).Config(), epochs=epochs)
            views = None
            if method == "nmtune":
                views = store.view_source(splits["train"], split_ref(task, 1, "train", splits["train"]), 2)
                cfg = replace(cfg, views=2)
            data = FeatureData(
                f["train"], labels(splits["train"]), f["val"], labels(splits["val"]), 10, views
            )
            fitted = TUNERS.get(method)(cfg).fit(data, 0)
            out[f"{method}:{task}"] = test_top1(fitted, f["test"], splits["test"])
            if task == "mnist":  # OOD: the MNIST head on UCI digits, never tuned on them
                uci = tasks["uci-digits"]["test"]
                out[f"{method}:uci-digits(ood)"] = test_top1(
                    fitted, store.eval_features(uci, split_ref("uci-digits", 1, "test", uci)), uci
                )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--noise", default="0,0.4", help="upstream symmetric noise rates")
    ap.add_argument("--upstream", type=int, default=6000, help="Fashion-MNIST images used upstream")
    ap.add_argument("--epochs", type=int, default=2, help="upstream epochs")
    ap.add_argument("--tune-epochs", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = Path(args.data)
    up_x, up_y = load(data, "fashionmnist_train", args.upstream)
    cx, cy = load(data, "cifar10_test", 3000, seed=1)
    mx, my = load(data, "mnist_test", 3000, seed=2)
    ux, uy = load(data, "uci_digits_8")
    ux = (ux.astype(np.float32) * (255.0 / max(1, ux.max()))).astype(np.uint8)
    tasks = {
        "cifar10": splits_of(cx, cy, "cifar10", 1500, 500),
        "mnist": splits_of(mx, my, "mnist", 1500, 500),
        "uci-digits": {"test": ArraySplit(ux, uy, "uci/test")},
    }
    rows = {}
    with tempfile.TemporaryDirectory() as root:
        torch.manual_seed(0)
        rows["random-init"] = evaluate(
            backbone(timm.create_model("nmlbench_tinyresnet", num_classes=0).eval(), "random"),
            tasks,
            root,
            args.tune_epochs,
        )
        for rate in [float(r) for r in args.noise.split(",")]:
            model, secs = timed(pretrain, up_x, noisy(up_y, rate), args.epochs)
            print(f"pretrained on Fashion-MNIST with {rate:.0%} symmetric noise in {secs:.1f} s")
            rows[f"fmnist-noise{rate:.0%}"] = evaluate(
                backbone(model, f"fmnist{rate}"), tasks, root, args.tune_epochs
            )
    cols = list(next(iter(rows.values())))
    print(f"{'backbone':18}" + "".join(f"{c:>24}" for c in cols))
    for name, r in rows.items():
        print(f"{name:18}" + "".join(f"{r[c]:24.2f}" for c in cols))


if __name__ == "__main__":
    main()
