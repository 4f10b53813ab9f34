"""Measure the sonotok-mini models on the corpus' test split (the numbers in their model cards).

    python scripts/mini/evaluate.py CORPUS DATA OUT [--models sonotok/mini] [--per-domain 60]

CORPUS: a `sonotok corpus make` folder; DATA: the output of prepare_data.py (0/5 dB test
mixtures). Writes OUT/{reconstruct,enhance_0dB,enhance_5dB,generate}/ (metrics.json +
report.html each) and OUT/summary.json, and prints the tables.

- Tokenizer: PESQ (wideband), STOI, mel distance per domain on every test clip.
- Denoiser: PESQ and DNSMOS of the noisy input and the enhanced output at 0 and 5 dB SNR.
- Generator: one clip per test caption (`--per-domain` captions per domain), Fréchet distance
  to the real test clips on sonotok semantic embeddings (mean-pooled mini-tokenizer semantic
  latents), and prompt-class accuracy: a linear probe (X-ARES protocol) trained on the same
  embeddings of real train clips judges each generated clip's domain (speech / music / sound)
  and, for sound prompts, its event (20 classes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from datasets import load_from_disk

from sonotok.enhancement.pipeline import EnhancementPipeline
from sonotok.evaluation.data import Item, discover
from sonotok.evaluation.embedders import EmbeddingCache, SonotokEmbedder, embed_item
from sonotok.evaluation.enhance import evaluate_enhancement
from sonotok.evaluation.generate import evaluate_generation
from sonotok.evaluation.probe import ProbeConfig, Split, predict, train_linear_probe
from sonotok.evaluation.reconstruct import evaluate_reconstruction, tokenizer_reconstructor
from sonotok.evaluation.report import write_report
from sonotok.generation.pipeline import TextToAudioPipeline
from sonotok.tokenizer import AudioTokenizer, load_audio, write_audio

SR = 16000


def mean(summary: dict, metric: str) -> float:
    return round(float(summary[metric]["mean"]), 4) if metric in summary else float("nan")


def reconstruction(tokenizer, corpus: Path, out: Path) -> dict:
    items = discover(corpus / "clips", split="test")
    result, examples = evaluate_reconstruction(items, tokenizer_reconstructor(tokenizer))
    write_report(out / "reconstruct", result, examples, title="sonotok-mini tokenizer (test split)")
    table = {"all": result["summary"], **result["per_domain"]}
    return {
        domain: {m: mean(s, m) for m in ("pesq", "stoi", "mel_distance", "stft_distance")}
        for domain, s in table.items()
    }


def enhancement(pipe, data: Path, out: Path) -> dict:
    clean = discover(data / "enhance_test" / "clean")
    scores = {}
    for snr in ("0dB", "5dB"):
        noisy = discover(data / "enhance_test" / f"noisy_{snr}")
        folder = out / f"enhance_{snr}"
        for item in noisy:
            wave = load_audio(item.path, SR)
            write_audio(folder / "enhanced" / f"{item.id}.wav", pipe.enhance(wave, SR), SR)
        result, examples = evaluate_enhancement(
            noisy, discover(folder / "enhanced"), clean, speaker_similarity=False
        )
        write_report(folder, result, examples, title=f"sonotok-mini denoiser at {snr} SNR")
        s = result["summary"]
        scores[snr] = {
            m: mean(s, m)
            for m in ("noisy_pesq", "pesq", "noisy_stoi", "stoi", "noisy_dnsmos_ovrl",
                      "dnsmos_ovrl", "noisy_dnsmos_sig", "dnsmos_sig", "noisy_dnsmos_bak", "dnsmos_bak")
        }  # fmt: skip
        scores[snr]["pesq_gain"] = round(scores[snr]["pesq"] - scores[snr]["noisy_pesq"], 4)
    return scores


def enhancement_vs_tokenizer(tokenizer, data: Path, out: Path) -> dict:
    """PESQ against the tokenizer's own reconstruction of the clean clip: the best output the
    latent denoiser can produce, so this isolates the denoiser from the vocoder's quality."""
    from sonotok.evaluation.speech import pesq_wb

    scores = {}
    clean = discover(data / "enhance_test" / "clean")
    ceiling = {}
    for item in clean:
        with torch.inference_mode():
            ceiling[item.id] = tokenizer.reconstruct(load_audio(item.path, SR), sample_rate=SR)
    for snr in ("0dB", "5dB"):
        rows = []
        for item in discover(data / "enhance_test" / f"noisy_{snr}"):
            target = ceiling[item.id]
            enhanced = load_audio(out / f"enhance_{snr}" / "enhanced" / f"{item.id}.wav", SR)
            rows.append((pesq_wb(target, load_audio(item.path, SR)), pesq_wb(target, enhanced)))
        noisy, enhanced = np.nanmean(np.array(rows), axis=0)
        scores[snr] = {"noisy_pesq_vs_reconstruction": round(float(noisy), 4),
                       "pesq_vs_reconstruction": round(float(enhanced), 4),
                       "gain": round(float(enhanced - noisy), 4)}  # fmt: skip
    return scores


def embed_rows(embedder, dataset, column: str) -> tuple[torch.Tensor, list]:
    from datasets import Audio

    from sonotok.core.sources import decode_audio

    dataset = dataset.cast_column("audio", Audio(decode=False))
    xs, labels = [], []
    for row in dataset:
        wave, _ = decode_audio(row["audio"], SR, None, row["id"])
        xs.append(torch.from_numpy(embedder.embed(wave)["embedding"][0]))
        labels.append(row[column])
    return torch.stack(xs), labels


def probe(embedder, corpus: Path, column: str, keep=lambda row: True):
    """A linear probe on real clips: train split to train, validation split to pick the epoch."""
    splits = load_from_disk(str(corpus / "clips"))
    train_x, train_labels = embed_rows(embedder, splits["train"].filter(keep), column)
    valid_x, valid_labels = embed_rows(embedder, splits["validation"].filter(keep), column)
    classes = sorted(set(train_labels))
    index = {c: i for i, c in enumerate(classes)}

    def split(x, labels):
        return Split(x, torch.tensor([index[c] for c in labels]))

    config = ProbeConfig()
    model, history = train_linear_probe(
        split(train_x, train_labels),
        split(valid_x, valid_labels),
        len(classes),
        "multiclass",
        config,
    )
    return model, classes, max(h["accuracy"] for h in history)


def generation(pipe, tokenizer, corpus: Path, out: Path, per_domain: int, seed: int) -> dict:
    test = load_from_disk(str(corpus / "clips"))["test"]
    rows = []
    for domain in ("speech", "music", "sound"):
        rows += [r for r in test.remove_columns("audio") if r["domain"] == domain][:per_domain]
    folder = out / "generate"
    items = []
    for start in range(0, len(rows), 16):
        batch = rows[start : start + 16]
        with torch.inference_mode():
            waves = pipe([r["caption"] for r in batch], seconds=4.0, num_steps=25,
                         guidance_scale=3.0, seed=seed + start)  # fmt: skip
        for row, wave in zip(batch, waves):
            path = folder / "audio" / row["domain"] / f"{row['id']}.wav"
            write_audio(path, wave.float().cpu(), SR)
            items.append(
                Item(id=row["id"], path=path, domain=row["domain"], caption=row["caption"])
            )
    embedder = SonotokEmbedder(tokenizer)
    cache = EmbeddingCache(folder / "embeddings")  # FD and the probe judge share embeddings
    reference = discover(corpus / "clips", split="test")
    result, examples = evaluate_generation(items, reference, {"sonotok": embedder}, cache)
    write_report(folder, result, examples, title="sonotok-mini generator (test captions)")

    scores = {"fd_sonotok": round(float(result["set_metrics"]["fd_sonotok"]), 4),
              "clips": len(items)}  # fmt: skip
    gen_x = torch.stack(
        [torch.from_numpy(embed_item(embedder, it, cache)["embedding"][0]) for it in items]
    )
    model, classes, real_acc = probe(embedder, corpus, "domain")
    pred = predict(model, Split(gen_x, torch.zeros(len(items), dtype=torch.long)), "multiclass")
    hits = np.array([classes[p] == it.domain for p, it in zip(pred.argmax(-1), items)])
    scores["domain_accuracy"] = round(float(hits.mean()), 4)
    scores["domain_probe_accuracy_on_real_validation"] = round(real_acc, 4)
    for domain in ("speech", "music", "sound"):
        mask = np.array([it.domain == domain for it in items])
        scores[f"domain_accuracy_{domain}"] = round(float(hits[mask].mean()), 4)

    model, classes, real_acc = probe(embedder, corpus, "event", lambda r: r["domain"] == "sound")
    sound = [i for i, it in enumerate(items) if it.domain == "sound"]
    events = {r["id"]: r["event"] for r in rows}
    pred = predict(
        model, Split(gen_x[sound], torch.zeros(len(sound), dtype=torch.long)), "multiclass"
    )
    hits = [classes[p] == events[items[i].id] for p, i in zip(pred.argmax(-1), sound)]
    scores["event_accuracy"] = round(float(np.mean(hits)), 4)
    scores["event_probe_accuracy_on_real_validation"] = round(real_acc, 4)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--models", type=Path, default=Path("sonotok/mini"))
    parser.add_argument("--per-domain", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["tokenizer", "denoiser", "generation"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["tokenizer", "denoiser", "generation"])
    summary_path = args.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    tokenizer = AudioTokenizer.from_pretrained(args.models / "tokenizer")
    if "tokenizer" in only:
        summary["tokenizer"] = reconstruction(tokenizer, args.corpus, args.out)
    if "denoiser" in only:
        pipe = EnhancementPipeline.from_pretrained(args.models / "denoiser")
        summary["denoiser"] = enhancement(pipe, args.data, args.out)
        summary["denoiser_vs_tokenizer_reconstruction"] = enhancement_vs_tokenizer(
            tokenizer, args.data, args.out
        )
    if "generation" in only:
        pipe = TextToAudioPipeline.from_pretrained(args.models / "generation")
        summary["generation"] = generation(
            pipe, tokenizer, args.corpus, args.out, args.per_domain, args.seed
        )
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
