"""Every tuning method on text models: the registered tinytext and tiny transformers models (a BERT-style
encoder and a GPT-2 decoder, random init, written in the hub's on-disk format), through `nmlbench
evaluate` on a tiny text task; LoRA targets and exact merges on text layers; LEVI's text small models;
the token dropout setting in text result keys only."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nmlbench.cli import main
from nmlbench.errors import UserError
from nmlbench.eval.config import load_eval_config, method_config_dict
from nmlbench.eval.run import config_key
from nmlbench.models import load_backbone
from nmlbench.models.text import TextOptions
from nmlbench.tasks.split import TASK_READERS, Split
from nmlbench.tuning import ALL_METHODS, TUNERS
from nmlbench.tuning.images import add_lora, lora_targets, merged_lora
from nmlbench.tuning.levi import LEVIConfig
from nmlbench.tuning.small import SMALL_MODELS, TextCNN, small_model_for, small_model_name

_spec = importlib.util.spec_from_file_location(
    "text_backbone_helpers", Path(__file__).parents[1] / "models" / "test_text_backbone.py"
)
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
tiny_hf = _helpers.tiny_hf

# words of the tiny transformers models' vocabulary (others would all read as [UNK])
WORDS = (["good", "cat", "sat", "mat"], ["bad", "dog", "ran", "movie"])
SIZES = {"train": 48, "val": 24, "test": 24}


def _read_words(spec, split, root, download):
    """Two classes told apart by their words; `pair: true` adds a neutral second sentence."""
    rng = np.random.default_rng({"train": 0, "val": 1, "test": 2}[split])
    labels = np.arange(SIZES[split]) % 2
    texts = [" ".join(rng.choice(WORDS[y], 5)) for y in labels]
    if spec.params.get("pair"):
        texts = [(t, "the a is was on") for t in texts]
    ids = [f"{spec.name}/{split}/{i}" for i in range(len(labels))]
    return Split(labels, ["pos", "neg"], ids, texts=texts)


if "test_text_words" not in TASK_READERS:
    TASK_READERS.add("test_text_words", _read_words)

FAST = [
    "text.max_length=16",
    "features.batch_size=64",
    *[f"{m.replace('-', '_')}.epochs=2" for m in ALL_METHODS],
    *[f"{m.replace('-', '_')}.batch_size=16" for m in ALL_METHODS],
    "mlp.views=2",
    "nmtune.views=2",
    "levi.small_widths=16,32",
    "levi_lora.small_widths=16,32",
    "levi.small_dim=32",
    "levi_lora.small_dim=32",
    "levi.adapter_hidden=32",
    "levi_lora.adapter_hidden=32",
    "levi.text_embed_dim=16",
    "levi_lora.text_embed_dim=16",
]


def _task(folder: Path, pair: bool) -> Path:
    path = folder / ("pairs.yaml" if pair else "words.yaml")
    path.write_text(
        "version: 1\nreader: test_text_words\nnum_classes: 2\nmodality: text\n"
        f"params: {{pair: {str(pair).lower()}}}\n"
    )
    return path


def _evaluate(tmp_path: Path, model: str, method: str, pair: bool, extra: list[str] = ()) -> dict:
    """Run `nmlbench evaluate` once; return the single record written."""
    args = ["evaluate", "--model", model, "--task", str(_task(tmp_path, pair)), "--method", method]
    for s in [*FAST, *extra]:
        args += ["--set", s]
    out = tmp_path / "out"
    assert main([*args, "--root", str(out)]) == 0
    records = [json.loads(p.read_text()) for p in out.rglob("*.json") if p.parent.name != "configs"]
    records = [r for r in records if "metrics" in r]
    assert len(records) == 1
    return records[0]


@pytest.fixture(scope="module")
def hf_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("hf")
    return {"hf-encoder": tiny_hf(folder / "bert", False), "hf-decoder": tiny_hf(folder / "gpt2", True)}


CELLS = [
    *[("tinytext", m, False) for m in ALL_METHODS],  # single sentences
    *[("hf-encoder", m, True) for m in ALL_METHODS],  # sentence pairs, [CLS] a [SEP] b [SEP]
    *[("hf-decoder", m, m in ("lp", "ft", "levi")) for m in ALL_METHODS],  # GPT-2: last-token pooling
]


# schedules that learn the easy task (chance 50 %) in well under a second per method
LEARN = {
    "lp": ["lp.epochs=30"],
    "mlp": ["mlp.epochs=30"],
    "nmtune": ["nmtune.epochs=30"],
    "lora": ["lora.epochs=10", "lora.lr=1e-2"],
    "nmtune-lora": ["nmtune_lora.epochs=10", "nmtune_lora.lr=1e-2"],
    "ft": ["ft.epochs=10", "ft.lr=3e-4", "ft.lr_head=1e-2"],
    "levi": ["levi.epochs=10"],
    "levi-lora": ["levi_lora.epochs=10"],
}


@pytest.mark.parametrize(("model", "method", "pair"), CELLS)
def test_every_method_learns_an_easy_text_task(tmp_path, hf_models, model, method, pair):
    """Two classes with disjoint words: each method, on a random-init model, tells them apart."""
    ref = hf_models.get(model, model)
    extra = ["pretrained=false"] if model == "tinytext" else []
    record = _evaluate(tmp_path, ref, method, pair, [*extra, *LEARN[method]])
    assert record["metrics"]["top1"] >= 80  # chance is 50
    assert record["task"]["modality"] == "text"
    assert record["model"]["library"] == "transformers"
    assert record["model"]["pooling"] == {"hf-decoder": "last"}.get(model, "cls")
    config = record["method"]["config"]
    assert config["augment"] == {"token_drop": 0.1}  # the text views' setting, no crop or flip
    section = config[method.replace("-", "_")]
    assert ("text_model" in section) == method.startswith("levi")
    trainable, total = record["method"]["trainable_params"], record["method"]["total_params"]
    if method in ("lora", "nmtune-lora"):
        assert 0 < trainable < total / 2  # adapters and head only
    if method == "ft":
        assert trainable == total  # every encoder weight and the head


def test_lora_targets_attention_and_mlp_projections(hf_models):
    enc = load_backbone(hf_models["hf-encoder"], text=TextOptions(max_length=8)).encoder
    dec = load_backbone(hf_models["hf-decoder"], text=TextOptions(max_length=8)).encoder
    bert = {n.split("layer.0.", 1)[1] for n in lora_targets(enc, "auto") if "layer.0." in n}
    assert bert == {
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "intermediate.dense",
        "output.dense",
    }
    gpt2 = {n.split("h.0.", 1)[1] for n in lora_targets(dec, "auto") if "h.0." in n}
    assert gpt2 == {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"}
    assert not any(
        "embeddings" in n or "wte" in n for n in lora_targets(enc, "auto") + lora_targets(dec, "auto")
    )
    mlp_only = lora_targets(enc, r".*layer\.\d+\.(intermediate|output)\.dense")
    assert len(mlp_only) == 4  # the reference's ViT choice, by regex: 2 blocks x 2 MLP layers


@pytest.mark.parametrize("model", ["hf-encoder", "hf-decoder"])
def test_text_lora_merges_exactly_and_gpt2_conv1d_is_fan_in_fan_out(hf_models, model):
    bb = load_backbone(hf_models[model], text=TextOptions(max_length=8))
    torch.manual_seed(0)
    with _no_warning():  # peft warns when fan_in_fan_out does not fit the layer (GPT-2's Conv1D)
        enc = add_lora(bb.trainable_encoder(), 4, 4.0, 0.0, "auto")
    trainable = [n for n, p in enc.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    for name, p in enc.named_parameters():
        if "lora_B" in name:  # peft starts B at 0: make the adapters change the output
            nn.init.normal_(p, std=0.1)
    enc.eval()
    x = torch.stack([bb.eval_transform()("the cat sat on the mat"), bb.eval_transform()(("a dog", "ran"))])
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    with torch.no_grad():
        plain = enc(x)
        with merged_lora(enc) as merged:
            fast = merged(x)
        again = enc(x)
    assert not torch.allclose(plain, bb.encoder(x))  # the adapters act
    assert torch.allclose(plain, fast, atol=1e-4, rtol=1e-4)  # the merge computes the same function
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in before.items())  # bit-identical
    assert torch.equal(plain, again)


class _no_warning:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.filterwarnings("error", message=".*fan_in_fan_out.*")

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def test_levi_picks_its_small_model_by_modality():
    text = load_backbone("tinytext", pretrained=False, text=TextOptions(max_length=16))
    image = load_backbone("tinyresnet", pretrained=False)
    cfg = LEVIConfig(small_widths=(8, 16), small_dim=12, text_embed_dim=8)
    assert small_model_name(text, cfg) == "text-cnn" and small_model_name(image, cfg) == "cnn"
    assert SMALL_MODELS.get("text-transformer").modality == "text"
    x = text.probe_input(3)
    for name in ("text-cnn", "text-transformer"):
        small = small_model_for(text, LEVIConfig(small_widths=(8, 16), small_dim=12, text_model=name,
                                                 text_embed_dim=8))  # fmt: skip
        assert small.eval()(x).shape == (3, 12)
    with pytest.raises(
        UserError, match="levi.text_model 'cnn' reads image inputs.*text-cnn, text-transformer"
    ):
        small_model_name(text, LEVIConfig(text_model="cnn"))
    with pytest.raises(UserError, match="unknown LEVI small model 'text-rnn'"):
        TUNERS.get("levi")(LEVIConfig(text_model="text-rnn")).check_backbone(text)


def test_text_cnn_reads_only_real_tokens():
    """Padding never changes a sentence's embedding: the same text at 16 and 32 tokens embeds alike."""
    torch.manual_seed(0)
    cnn = TextCNN(100, 8, (8, 16), 4).eval()
    short = torch.tensor([[[2, 10, 11, 12, 3, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]]])
    longer = torch.cat([short, torch.zeros(1, 2, 8, dtype=torch.long)], dim=2)
    longer[0, 0, 8:] = 7  # whatever id a pad slot holds
    assert torch.allclose(cnn(short), cnn(longer))


def test_levi_text_transformer_fits(tmp_path):
    record = _evaluate(
        tmp_path, "tinytext", "levi", True, ["pretrained=false", "levi.text_model=text-transformer"]
    )
    assert record["method"]["config"]["levi"]["text_model"] == "text-transformer"


IMAGE_KEYS = {  # result keys of image models before text settings existed: they must not move
    "reference": {"lp": "05991e6d", "mlp": "d4d1eeb0", "nmtune": "11ec9509", "nmtune-lora": "f28d287a",
                  "lora": "77467424", "ft": "c8b4f9fa", "levi": "498825dd", "levi-lora": "d6e8ddaf"},
    "mini": {"lp": "eae7bf8b", "mlp": "f16f4e01", "nmtune": "eea7c96b", "nmtune-lora": "5d015c09",
             "lora": "c15b0a02", "ft": "cca3dcdc", "levi": "a8df56bc", "levi-lora": "1c233da4"},
}  # fmt: skip


@pytest.mark.parametrize("preset", sorted(IMAGE_KEYS))
def test_text_settings_key_text_results_only(preset):
    cfg = load_eval_config(preset)
    drop = load_eval_config(
        preset, overrides=["features.augment.token_drop=0.3", "levi.text_model=text-transformer"]
    )
    crop = load_eval_config(preset, overrides=["features.augment.scale_min=0.5"])
    for method in ALL_METHODS:
        tuner = TUNERS.get(method)(None)
        assert config_key(cfg, tuner) == IMAGE_KEYS[preset][method]
        assert config_key(drop, tuner) == config_key(cfg, tuner)  # image keys ignore text settings
        assert config_key(crop, tuner, "text") == config_key(cfg, tuner, "text")  # and vice versa
        moved = config_key(drop, tuner, "text") != config_key(cfg, tuner, "text")
        assert moved  # token_drop enters every text method's key (levi's text_model too)
    text = method_config_dict(cfg, "nmtune", "features", "text")
    assert text["augment"] == text["features"]["augment"] == {"token_drop": 0.1}


@pytest.mark.parametrize("method", ["nmtune", "levi-lora"])
def test_same_seed_same_predictions_on_text(tmp_path, method):
    """Token dropout draws from seeded generators: two runs of one cell predict the same."""
    runs = []
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        runs.append(_evaluate(tmp_path / str(i), "tinytext", method, True, ["pretrained=false"]))
    assert runs[0]["predictions"]["sha256"] == runs[1]["predictions"]["sha256"]
    assert runs[0]["metrics"] == runs[1]["metrics"]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("levi.text_model=text-rnn", "unknown LEVI small model 'text-rnn'"),
        ("levi.text_model=cnn", "levi.text_model 'cnn' reads image inputs"),
        ("features.augment.token_drop=1", "token_drop"),
        ("levi.text_kernel=4", "levi.text_kernel must be odd"),
        ("levi.text_model=text-transformer,levi.text_heads=3", "levi.text_heads (3) must divide"),
    ],
)
def test_bad_text_settings_are_one_line_and_write_nothing(tmp_path, capsys, setting, message):
    args = ["evaluate", "--model", "tinytext", "--task", str(_task(tmp_path, False)), "--method", "levi"]
    out = tmp_path / "out"
    sets = [a for s in ["pretrained=false", *setting.split(",")] for a in ("--set", s)]
    assert main([*args, *sets, "--root", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not list(out.rglob("*.json"))


def test_nmtune_fresh_text_views_reference_protocol(tmp_path):
    """views=0 (the reference protocol): two fresh token-dropout views through the model every step."""
    extra = ["pretrained=false", "nmtune.views=0", *LEARN["nmtune"]]
    record = _evaluate(tmp_path, "tinytext", "nmtune", True, extra)
    assert record["metrics"]["top1"] >= 80
    assert record["method"]["config"]["features"]["augment"] == {"token_drop": 0.1}
