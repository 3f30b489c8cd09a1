"""Optional exports of a manifest for tools that do not read manifests: a noisy label table, noisy shards.

The source is never modified: exports are new files, written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from nmlbench.errors import UserError
from nmlbench.io import atomic_dir, atomic_path
from nmlbench.noise.manifest import read_manifest_table
from nmlbench.noise.sources import SourceSpec, expand_shards


def export_labels(manifest: str | Path, dest: str | Path) -> Path:
    """Write `sample_id, label, class, clean_label` (noisy label first) as CSV, TSV, parquet or JSON lines."""
    tbl, meta = read_manifest_table(manifest)
    if meta["target"] != "label":
        raise UserError("--export-labels needs a label manifest; this one is for captions (use --export-wds)")
    dest = Path(dest)
    classes = pa.array(meta["classes"] or [], pa.string())
    out = pa.table(
        {
            "sample_id": tbl.column("sample_id"),
            "label": tbl.column("noisy_label"),
            "class": classes.take(tbl.column("noisy_label")),
            "clean_label": tbl.column("clean_label"),
        }
    )
    suffix = dest.suffix.lower()
    with atomic_path(dest) as tmp:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(out, tmp)
        elif suffix in (".csv", ".tsv"):
            import pyarrow.csv as pcsv

            pcsv.write_csv(out, tmp, pcsv.WriteOptions(delimiter="\t" if suffix == ".tsv" else ","))
        elif suffix == ".jsonl":
            out.to_pandas().to_json(tmp, orient="records", lines=True)
        else:
            raise UserError(f"--export-labels {dest}: use a .csv, .tsv, .parquet or .jsonl file name")
    return dest


def _noisy_value(sample: dict, meta: dict, noisy: dict, donor_caption: dict, spec: SourceSpec) -> dict:
    """The sample with its label member (.cls / json) or caption member (.txt / json) replaced."""
    key = sample["__key__"]
    out = {k: v for k, v in sample.items() if not k.startswith("__")}
    if meta["target"] == "label":
        if "cls" in out or "json" not in out:
            out["cls"] = str(noisy[key]).encode()
        if "json" in out:
            doc = json.loads(out["json"])
            label_key = spec.label_column or "label"  # None: the reader's default json key
            if label_key in doc:
                doc[label_key] = noisy[key]
            out["json"] = json.dumps(doc).encode()
        return out
    donor = noisy[key]
    if donor == key:
        return out
    if "txt" in out:
        out["txt"] = donor_caption[donor]["txt"]
    cap_key = spec.caption_column or "caption"
    if "json" in out and cap_key in donor_caption[donor]:
        doc = json.loads(out["json"])
        doc[cap_key] = donor_caption[donor][cap_key]
        out["json"] = json.dumps(doc).encode()
    return out


def export_wds(manifest: str | Path, dest: str | Path) -> Path:
    """Rewrite the manifest's webdataset source into `dest` (same shard names) with the noise applied."""
    import webdataset as wds

    tbl, meta = read_manifest_table(manifest)
    spec = SourceSpec(**meta["source"]["spec"])
    if spec.type != "wds":
        raise UserError(f"--export-wds needs a webdataset source; this manifest's source is {spec.type!r}")
    urls = expand_shards(spec.path)
    ids = tbl.column("sample_id").to_pylist()
    col = "noisy_label" if meta["target"] == "label" else "donor_id"
    noisy = dict(zip(ids, tbl.column(col).to_pylist(), strict=True))
    donor_caption: dict[str, dict] = {}
    if meta["target"] == "caption":  # first pass: only the captions that move
        wanted = set(tbl.filter(pc.field("corrupted")).column("donor_id").to_pylist())
        for s in tqdm(
            wds.WebDataset(urls, shardshuffle=False, empty_check=False), desc="collecting captions"
        ):
            if s["__key__"] in wanted:
                doc = json.loads(s["json"]) if "json" in s else {}
                donor_caption[s["__key__"]] = {
                    "txt": s.get("txt"),
                    spec.caption_column or "caption": doc.get(spec.caption_column or "caption"),
                }
    with atomic_dir(dest) as tmp:
        for url in tqdm(urls, desc="writing shards", unit="shard"):
            with wds.TarWriter(str(tmp / Path(url).name)) as sink:
                for s in wds.WebDataset([url], shardshuffle=False, empty_check=False):
                    sink.write({"__key__": s["__key__"], **_noisy_value(s, meta, noisy, donor_caption, spec)})
    return Path(dest)
