"""NMTune loss terms against a direct computation; MLP is NMTune with zero weights."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nmlbench.config import replace
from nmlbench.features import CachedViews
from nmlbench.tuning import TUNERS, FeatureData
from nmlbench.tuning.nmtune import MLPConfig, NMTuneConfig, NMTuneNet, nmtune_loss


def direct_terms(net: NMTuneNet, f_a: torch.Tensor, f_b: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """METHODS.md §3 written out with explicit loops and numpy, independent of the implementation."""
    z_a, z_b = net.embed(f_a).detach().double(), net.embed(f_b).detach().double()
    z = torch.cat([z_a, z_b]).numpy()
    logits = net.head(torch.cat([net.embed(f_a), net.embed(f_b)])).detach().double().numpy()
    yy = np.concatenate([y.numpy(), y.numpy()])
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    ce = -np.mean(logp[np.arange(len(yy)), yy])
    nb = z_b.numpy() / np.linalg.norm(z_b.numpy(), axis=1, keepdims=True)
    fa = f_a.double().numpy() / np.linalg.norm(f_a.double().numpy(), axis=1, keepdims=True)
    mse = np.mean((nb - fa) ** 2)
    n, d = z.shape
    zc = z - z.mean(0)
    cov = zc.T @ zc / (n - 1)
    cov_loss = sum(cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / d
    s = np.linalg.svd(z, compute_uv=False)
    s = s / s.sum()
    svd = np.sort(s)[::-1][:5].mean()
    return {"ce": ce, "mse": mse, "cov": cov_loss, "svd": svd}


def test_loss_terms_and_reference_weights() -> None:
    torch.manual_seed(0)
    cfg = NMTuneConfig()
    assert (cfg.lambda_mse, cfg.lambda_cov, cfg.lambda_svd, cfg.svd_topk) == (1.0, 0.04, 0.001, 5)
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.epochs, cfg.residual, cfg.scale_init) == (
        1e-3,
        1e-4,
        64,
        30,
        True,
        1.0,
    )
    net = NMTuneNet(8, 3).eval()  # eval: BatchNorm uses running stats in both computations
    f_a, f_b, y = torch.randn(6, 8), torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    terms = nmtune_loss(net, f_a, f_b, y, cfg)
    ref = direct_terms(net, f_a, f_b, y)
    for name in ("ce", "mse", "cov", "svd"):
        assert abs(terms[name].item() - ref[name]) < 1e-5, name
    total = ref["ce"] + 1.0 * ref["mse"] + 0.04 * ref["cov"] - 0.001 * ref["svd"]
    assert abs(terms["total"].item() - total) < 1e-5
    weighted = nmtune_loss(net, f_a, f_b, y, replace(cfg, lambda_mse=2.0, lambda_cov=0.5, lambda_svd=3.0))
    assert (
        abs(weighted["total"].item() - (ref["ce"] + 2 * ref["mse"] + 0.5 * ref["cov"] - 3 * ref["svd"]))
        < 1e-5
    )
    assert abs(F.cross_entropy(net(torch.cat([f_a, f_b])), torch.cat([y, y])).item() - ref["ce"]) < 1e-5


def test_network_shape_and_init() -> None:
    net = NMTuneNet(16, 5)
    assert [type(m).__name__ for m in net.mlp] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert net.mlp[0].out_features == 64 and torch.all(net.scale == 1.0) and torch.all(net.head.bias == 0)


def _data() -> FeatureData:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (60,), generator=g)
    centres = torch.randn(3, 12, generator=g) * 3
    x = centres[y] + torch.randn(60, 12, generator=g)
    views = CachedViews(torch.stack([x + 0.1 * torch.randn(60, 12, generator=g) for _ in range(2)]))
    return FeatureData(x[:40], y[:40], x[40:], y[40:], 3, CachedViews(views.views[:, :40]))


def test_mlp_equals_nmtune_with_zero_weights() -> None:
    data = _data()
    mlp = TUNERS.get("mlp")(MLPConfig(epochs=3, batch_size=16)).fit(data, seed=1)
    zero = NMTuneConfig(epochs=3, batch_size=16, lambda_mse=0, lambda_cov=0, lambda_svd=0)
    nm0 = TUNERS.get("nmtune")(zero).fit(data, seed=1)
    assert np.array_equal(mlp.predict(data.val), nm0.predict(data.val))
    nm = TUNERS.get("nmtune")(NMTuneConfig(epochs=3, batch_size=16)).fit(data, seed=1)
    assert not np.array_equal(mlp.predict(data.val), nm.predict(data.val))  # the regularisers do act


def test_one_view_is_embedded_once_with_the_same_loss_and_gradients(monkeypatch) -> None:
    torch.manual_seed(0)
    net = NMTuneNet(8, 3)  # train mode: BatchNorm normalises with the batch's statistics
    f, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    runs, rows = [], []
    real = NMTuneNet.embed
    monkeypatch.setattr(NMTuneNet, "embed", lambda self, x: rows.append(len(x)) or real(self, x))
    # a copy of f: embedded as one 2B batch (joint) or twice (separate); f itself (K=1): once
    for f_b, bn in ((f.clone(), "joint"), (f.clone(), "separate"), (f, "joint")):
        rows.clear()
        net.zero_grad()
        terms = nmtune_loss(net, f, f_b, y, NMTuneConfig(bn_views=bn))
        terms["total"].backward()
        runs.append((terms["total"].item(), [p.grad.clone() for p in net.parameters()], list(rows)))
    assert [r[2] for r in runs] == [[12], [6, 6], [6]]
    for loss, grads, _ in runs[1:]:  # [f; f] normalises like f: the same loss and gradients
        assert abs(loss - runs[0][0]) < 1e-6
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, runs[0][1], strict=True))


def test_view_trained_tuners_need_no_train_eval_features() -> None:
    data = _data()
    one = FeatureData(
        None, data.train_labels, data.val, data.val_labels, 3, CachedViews(data.views.views[:1])
    )
    f_a, f_b = one.pair(torch.arange(4), torch.Generator())
    assert f_a is f_b  # K=1: one tensor, embedded once
    fitted = TUNERS.get("nmtune")(NMTuneConfig(epochs=3, batch_size=16, views=1)).fit(one, seed=0)
    assert fitted.predict(data.val).shape == (20, 3)
    assert not TUNERS.get("nmtune").uses_train_features and not TUNERS.get("mlp").uses_train_features
    assert TUNERS.get("lp").uses_train_features


def test_fused_adamw_keeps_the_update_rule(monkeypatch) -> None:
    import nmlbench.tuning.loop as loop

    data, cfg = _data(), NMTuneConfig(epochs=2, batch_size=16)
    assert loop._can_fuse([{"params": [torch.zeros(2, requires_grad=True)]}])
    fused = TUNERS.get("nmtune")(cfg).fit(data, seed=0).predict(data.val)
    monkeypatch.setattr(loop, "_can_fuse", lambda groups: False)
    plain = TUNERS.get("nmtune")(cfg).fit(data, seed=0).predict(data.val)
    assert np.allclose(fused, plain, atol=1e-4)
