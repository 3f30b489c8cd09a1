"""LoRA adapters train with their dropout while the frozen backbone's BatchNorm keeps its statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nmlbench.models import load_backbone
from nmlbench.tuning.images import add_lora
from nmlbench.tuning.loop import Schedule, param_groups, run_training


@pytest.mark.parametrize("dropout", [0.5, 0.0])
def test_lora_dropout_is_active_in_training_and_batchnorm_stays_frozen(dropout: float) -> None:
    torch.manual_seed(0)
    bb = load_backbone("tinyresnet", pretrained=False)
    enc = add_lora(bb.trainable_encoder(), 4, 4.0, dropout, "auto")
    for name, p in enc.named_parameters():
        if "lora_B" in name:  # peft starts B at 0, which would hide dropout on A's input
            nn.init.normal_(p, std=0.1)
    stats = {k: v.clone() for k, v in enc.state_dict().items() if "running_" in k}
    assert stats  # the tiny ResNet has BatchNorm layers
    head = nn.Linear(bb.feature_dim, 2)
    x, y = torch.randn(8, 3, 32, 32), torch.tensor([0, 1] * 4)
    differ = []

    def step(idx: torch.Tensor) -> torch.Tensor:
        a, b = enc(x), enc(x)  # two passes over the same batch in train mode
        differ.append(not torch.allclose(a, b))
        return F.cross_entropy(head(a), y)

    groups = param_groups([(enc.parameters(), 1e-3, 0.0), (head.parameters(), 1e-3, 0.0)])
    gen = torch.Generator().manual_seed(0)
    run_training([enc, head], groups, 16, Schedule(2, 8), step, lambda: 0.0, gen, frozen=enc)
    assert len(differ) == 4 and all(d == (dropout > 0) for d in differ)
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in stats.items())
    assert not enc.training and torch.equal(enc(x), enc(x))  # predictions after training: no dropout
