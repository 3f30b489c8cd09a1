"""Bad input: one line on stderr, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import TINY

from nmlbench.cli import main


def _err(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "resnet5O"], "did you mean 'resnet50'"),
        (["--preset", "mini-resnt"], "did you mean 'mini-resnet'"),
        (["--noise", "110%"], "outside [0, 1)"),
        (["--set", "optim.lr=fast"], "expected a number"),
        (["--set", "optim.lrr=0.1"], "did you mean 'lr'"),
        (["--set", "device=cuda"], "no GPU is visible"),
        (["--preset", "mini-clip", "--model", "tinyresnet"], "needs objective 'clip'"),
        (
            ["--preset", "mini-clip", "--model", "tinyresnet", "--objective", "clip"],
            "objective needs open_clip",
        ),
        (["--set", "data.source=imagefolder", "--set", "data.path=/nonexistent/imagenet"], "not found at"),
        (
            ["--set", "data.source=imagefolder", "--set", "data.path=/tmp", "--noise", "10%"],
            "needs a manifest",
        ),
        (["--set", "optim.batch_size=4096"], "cannot fill one global batch"),
    ],
)
def test_bad_input_is_one_line_exit_2(tiny_mini, tmp_path, capsys, argv, message):
    if "device=cuda" in argv:
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is visible")
    assert main(["pretrain", "--out", str(tmp_path), *TINY, *argv]) == 2
    assert message in _err(capsys)
    assert not (tmp_path / "ckpt").exists() or not [
        p for p in (tmp_path / "ckpt").iterdir() if p.name != ".partial"
    ]


def test_resume_from_a_non_checkpoint(tiny_mini, tmp_path, capsys):
    assert main(["pretrain", "--out", str(tmp_path), *TINY, "--resume", str(tmp_path)]) == 2
    assert "not an interval checkpoint" in _err(capsys)


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    assert "nmlbench pretrain --noise 0,10,30%" in capsys.readouterr().out


def test_list_presets(capsys):
    assert main(["pretrain", "--list-presets"]) == 0
    out = capsys.readouterr().out
    for name in (
        "mini-resnet",
        "mini-clip",
        "resnet50-in1k",
        "clip-rn50-yfcc15m",
        "clip-vitb16-cc12m-yfcc15m",
    ):
        assert name in out


def test_paper_presets_resolve(tmp_path):
    from nmlbench.pretrain.config import PRESETS, load_pretrain_config
    from nmlbench.pretrain.train import run_name

    names = {n: run_name(load_pretrain_config(n, None, [])) for n in PRESETS.names()}
    assert names["resnet50-in1k"] == "resnet50.imagenet1k_clean_s0"  # rate 0 of a {rate} pattern: no manifest
    assert names["clip-vitb16-cc12m-yfcc15m"] == "clip_vit_b16.cc12m-yfcc15m_clean_s0"
    assert load_pretrain_config("clip-vitb16-cc12m-yfcc15m", None, []).optim.stop_epoch == 16
    assert Path(PRESETS.get("mini-vit")).is_file()
