"""Folders the sonotok-mini recipe needs, cut from a `sonotok corpus make` corpus.

    python scripts/mini/prepare_data.py CORPUS OUT [--examples DIR]

Writes OUT/speech_{train,validation}/ and OUT/noise_{train,validation}/ (wav folders for
`sonotok train enhancement`), OUT/enhance_test/{clean,noisy_0dB,noisy_5dB}/ (the corpus' test
speech mixed with its test noise at exactly 0 and 5 dB SNR, same file names), and with
--examples the demo clips bundled in sonotok/mini/examples (clean/<domain>/, noisy/speech/).
Deterministic: the same corpus gives the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from datasets import Audio, load_from_disk

from sonotok.core.sources import decode_audio
from sonotok.enhancement.mixing import fit_length, mix
from sonotok.tokenizer import write_audio

SR = 16000


def clips(dataset, domain: str | None = None):
    if isinstance(dataset.features.get("audio"), Audio):
        dataset = dataset.cast_column("audio", Audio(decode=False))  # bytes; we decode
    for row in dataset:
        if domain is None or row["domain"] == domain:
            wave, _ = decode_audio(row["audio"], SR, None, row["id"])
            yield row, wave.numpy()


def export(dataset, folder: Path, domain: str | None = None) -> int:
    n = 0
    for row, wave in clips(dataset, domain):
        write_audio(folder / f"{row['id']}.wav", wave, SR)
        n += 1
    return n


def test_mixtures(speech, noise, out: Path, snrs=(0.0, 5.0), seed: int = 0) -> int:
    """Each test speech clip with a test noise clip (drawn by a seeded generator) at each SNR.
    One gain per clip keeps every mixture and the shared clean reference unclipped and at the
    same scale, so each pair's SNR is exact."""
    noises = [w for _, w in clips(noise)]
    rng = np.random.default_rng(seed)
    n = 0
    for row, wave in clips(speech, "speech"):
        pick = noises[int(rng.integers(len(noises)))]
        segment = fit_length(pick, wave.shape[0], int(rng.integers(pick.shape[0])))
        noisy = {v: mix(wave, segment, v, peak=np.inf)[0] for v in snrs}
        peak = max(float(np.abs(x).max(initial=0)) for x in [wave, *noisy.values()])
        gain = min(1.0, 0.99 / peak) if peak > 0 else 1.0
        write_audio(out / "clean" / f"{row['id']}.wav", gain * wave, SR)
        for value, mixture in noisy.items():
            write_audio(out / f"noisy_{value:g}dB" / f"{row['id']}.wav", gain * mixture, SR)
        n += 1
    return n


def demo_examples(clips_test, noise_test, out: Path) -> None:
    """A few test clips per domain (English speech first) and one 5 dB noisy speech clip."""
    wanted = {"speech": 2, "music": 1, "sound": 1}
    chosen = {}
    for row, wave in clips(clips_test):
        domain = row["domain"]
        english = domain != "speech" or str(row.get("language", "")).startswith("en")
        if english and len(chosen.setdefault(domain, [])) < wanted[domain]:
            chosen[domain].append((row, wave))
    for domain, rows in chosen.items():
        for row, wave in rows:
            write_audio(out / "clean" / domain / f"{row['id']}.wav", wave, SR)
    row, wave = chosen["speech"][0]
    _, noise = next(clips(noise_test))
    noisy, _ = mix(wave, fit_length(noise, wave.shape[0], 0), 5.0, peak=np.inf)
    gain = min(1.0, 0.99 / max(float(np.abs(noisy).max()), float(np.abs(wave).max()), 1e-9))
    write_audio(out / "clean" / "speech" / f"{row['id']}.wav", gain * wave, SR)  # same scale
    write_audio(out / "noisy" / "speech" / f"{row['id']}.wav", gain * noisy, SR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--examples", type=Path, default=None)
    args = parser.parse_args()
    clip_splits = load_from_disk(str(args.corpus / "clips"))
    noise_splits = load_from_disk(str(args.corpus / "noise"))
    for split in ("train", "validation"):
        n = export(clip_splits[split], args.out / f"speech_{split}", "speech")
        m = export(noise_splits[split], args.out / f"noise_{split}")
        print(f"{split}: {n} speech, {m} noise clips")
    n = test_mixtures(clip_splits["test"], noise_splits["test"], args.out / "enhance_test")
    print(f"test: {n} speech clips at 0 and 5 dB SNR")
    if args.examples:
        demo_examples(clip_splits["test"], noise_splits["test"], args.examples)
        print(f"demo examples in {args.examples}")


if __name__ == "__main__":
    main()
