"""Throughput of nmlbench's pretraining loop vs a minimal hand-written timm loop, in one run.

Same model, batch size, data (the mini upstream set) and augmentation; the minimal loop has no
manifest, per-sample seeding, metrics, checkpoints or progress bar. Prints img/s of each and the
ratio (ours / minimal). CPU by default; on a GPU node both loops use CUDA, bf16 autocast and
channels_last.

    python benchmarks/pretrain_throughput.py                 # tinyresnet, batch 128, 100 steps x 2 rounds
    python benchmarks/pretrain_throughput.py --model tinyvit --steps 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time

import timm
import torch
import torch.nn.functional as F

from nmlbench.mini import load_upstream
from nmlbench.models.zoo import resolve_model
from nmlbench.pretrain.config import load_pretrain_config
from nmlbench.pretrain.loader import tensor_transform
from nmlbench.pretrain.train import checkpoint_dir, pretrain


def minimal_loop(model_name: str, batch: int, steps: int, device: torch.device) -> float:
    """A plain timm training loop over the same images; returns img/s over steps 3..end."""
    up = load_upstream()
    spec = resolve_model(model_name, "timm")
    images = torch.from_numpy(up.images).permute(0, 3, 1, 2)
    labels = torch.from_numpy(up.labels)
    aug = load_pretrain_config("mini-resnet", None, []).aug  # the same augmentation as our loop
    tf = tensor_transform(spec.image_size, spec.mean, spec.std, aug.scale_min, aug.hflip, aug.color_jitter)
    ds = torch.utils.data.TensorDataset(images, labels)
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        collate_fn=lambda b: (torch.stack([tf(x) for x, _ in b]), torch.stack([y for _, y in b])),
    )
    torch.manual_seed(0)
    model = timm.create_model(spec.arch, num_classes=len(up.classes)).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.05)
    done, t0 = 0, 0.0
    while done < steps:
        for x, y in loader:
            if done == 2:
                t0 = time.perf_counter()
            x, y = x.to(device), y.to(device)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done >= steps:
                break
    if cuda:
        torch.cuda.synchronize()
    return (steps - 2) * batch / (time.perf_counter() - t0)


def our_loop(model_name: str, batch: int, steps: int) -> float:
    """`nmlbench.pretrain.train.pretrain` on the mini preset; img/s from its own metrics (setup excluded)."""
    with tempfile.TemporaryDirectory() as root:
        cfg = load_pretrain_config(
            "mini-resnet",
            None,
            [f"model={model_name}", f"optim.batch_size={batch}", "log_every_steps=1", "optim.epochs=50"],
        )
        spe = len(load_upstream().ids) // batch
        stop = max(1, -(-steps // spe))
        cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, stop_epoch=stop))
        pretrain(cfg, root)
        rows = [json.loads(x) for x in (checkpoint_dir(cfg, root) / "metrics.jsonl").read_text().splitlines()]
        rows = rows[2:steps]
        return sum(r["img_per_s"] for r in rows) / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tinyresnet")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternate the two loops this many times and keep each one's best (shared machines)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ours = minimal = 0.0
    for _ in range(args.rounds):
        ours = max(ours, our_loop(args.model, args.batch, args.steps))
        minimal = max(minimal, minimal_loop(args.model, args.batch, args.steps, device))
    print(
        f"device={device} model={args.model} batch={args.batch} steps={args.steps} threads={args.threads} "
        f"rounds={args.rounds} (best of each)"
    )
    print(f"nmlbench loop: {ours:9.1f} img/s")
    print(f"minimal loop:  {minimal:9.1f} img/s")
    print(f"ratio (nmlbench / minimal): {ours / minimal:.3f}")


if __name__ == "__main__":
    main()
