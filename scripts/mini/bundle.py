"""Copy trained sonotok-mini models from their run folders into the package (sonotok/mini/).

    python scripts/mini/bundle.py RUNS sonotok/mini

RUNS holds tokenizer-mini-gan/model, enhancement-mini/model and generation-mini/pipeline (the
exports of `sonotok train tokenizer|enhancement|generation`). The denoiser and the generator
name the shared tokenizer as "../tokenizer" instead of carrying a copy, so the bundle stores
its weights once. Weights are stored as float16 (half the size; the loaders cast them back to
float32, and the model cards' numbers are measured on these files). Model cards (README.md)
already in the target folders are kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from sonotok.enhancement.pipeline import EnhancementPipeline
from sonotok.generation.pipeline import TextToAudioPipeline
from sonotok.tokenizer import AudioTokenizer


def replace_weights(source: Path, target: Path, names: list[str]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(source / name, target / name)


def store_half(folder: Path) -> None:
    """Rewrite every model.safetensors below `folder` with float16 tensors."""
    for file in folder.rglob("model.safetensors"):
        state = load_file(str(file))
        save_file(
            {k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(file)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    runs, target = args.runs, args.target

    replace_weights(runs / "tokenizer-mini-gan" / "model", target / "tokenizer",
                    ["config.json", "model.safetensors"])  # fmt: skip
    tokenizer = AudioTokenizer.from_pretrained(target / "tokenizer")

    denoiser = runs / "enhancement-mini" / "model"
    replace_weights(denoiser, target / "denoiser", ["config.json", "model.safetensors"])
    config_file = target / "denoiser" / "config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer"] = "../tokenizer"
    config_file.write_text(json.dumps(config, indent=2) + "\n")

    pipe = TextToAudioPipeline.from_pretrained(
        runs / "generation-mini" / "pipeline", tokenizer=tokenizer
    )
    for name in ("dit", "scheduler", "tokenizer", "pipeline.json"):
        stale = target / "generation" / name
        if stale.is_dir():
            shutil.rmtree(stale)
    pipe.save_pretrained(target / "generation", tokenizer_reference="../tokenizer")

    store_half(target)
    # Loading each from the bundle is the check that the references resolve.
    EnhancementPipeline.from_pretrained(target / "denoiser")
    TextToAudioPipeline.from_pretrained(target / "generation")
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"bundled into {target}: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
