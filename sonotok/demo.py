"""`sonotok demo`: reconstruct, enhance and generate on bundled example clips, offline,
and write one HTML report (the evaluation toolkit's) to open and listen to.

Models default like every other command: the official release when it is in the local
Hugging Face cache, else the bundled sonotok-mini models (sonotok/mini/). The command's
options are defined in `sonotok.cli.demo`; `run(args)` takes its parsed namespace.
"""

from __future__ import annotations

import html
import json
import shutil
import sys
import time
from pathlib import Path

from sonotok.core import options
from sonotok.defaults import MINI_DIR, bundled, model_or_default
from sonotok.defaults import OFFICIAL as OFFICIAL_IDS

EXAMPLES_DIR = MINI_DIR / "examples"  # clean/<domain>/*.wav, noisy/speech/*.wav (5 dB SNR)
MARKER = "demo.json"  # a folder holding this was written by the demo and may be replaced
PROMPT_DOMAINS = {  # default prompts and the example-clip domain each one asks for
    "Synthetic English speech, female voice, normal rate.": "speech",
    "Acoustic grand piano in C major at 100 BPM, with a cheerful mood.": "music",
    "A dog barking.": "sound",
    "A church bell ringing.": "sound",
}
PROMPTS = tuple(PROMPT_DOMAINS)
# What the bundled models measured on their corpus' test split (sonotok/mini/*/README.md,
# "Measured"), shown beside the demo's few clips.
MINI_CARD = {
    "tokenizer": "model card, 240 test speech clips: PESQ 1.50, STOI 0.869",
    "denoiser": "model card, 240 test clips at 5 dB: PESQ vs clean 1.63 → 1.29; vs the "
    "tokenizer's reconstruction of the clean clip 1.23 → 2.11 (+0.89)",
    "generation": "model card, 180 test captions: prompt domain right 97.8 %, sound event "
    "right 50 %, Fréchet distance 32.4 (real clips: 11.9)",
}
# What the official models give instead (published numbers; not measured by this demo).
OFFICIAL = {
    # DashengTokenizer paper: Seed-TTS EN reconstruction at 25 Hz
    "tokenizer": "mispeech/dashengtokenizer reconstructs English speech at PESQ 4.125, STOI "
    "0.987 (Seed-TTS EN, DashengTokenizer paper)",
    "denoiser": "a latent denoiser is capped by its tokenizer's reconstruction: PESQ 4.125 on "
    "English speech with mispeech/dashengtokenizer instead of 1.50 with sonotok-mini "
    "(the DashengTokenizer paper scores its denoiser on VoiceBank-DEMAND and DNS1)",
    "generation": "mispeech/Dasheng-AudioGen: a DiT on the official 1280-d latents trained on "
    "WavCaps and LP-MusicCaps (its AudioCaps / MusicCaps FAD, KL and CLAP scores: the "
    "DashengTokenizer paper)",
}


def _prepare_output(out: Path, overwrite: bool) -> None:
    """Never delete what the user wrote: only an earlier demo's folder is replaced."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out}: is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file() and not overwrite:
            raise ValueError(
                f"--output {out}: folder exists and was not written by `sonotok demo`; choose "
                "another folder or pass --overwrite"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _reconstruct(tokenizer, out: Path) -> dict:
    from sonotok.evaluation.data import discover
    from sonotok.evaluation.reconstruct import evaluate_reconstruction, tokenizer_reconstructor
    from sonotok.evaluation.report import write_report

    items = discover(EXAMPLES_DIR / "clean")
    result, examples = evaluate_reconstruction(
        items, tokenizer_reconstructor(tokenizer), num_examples=len(items)
    )
    write_report(out, result, examples, title="sonotok demo: reconstruction")
    return result


def _enhance(pipe, out: Path) -> dict:
    from sonotok.evaluation.data import discover
    from sonotok.evaluation.enhance import evaluate_enhancement
    from sonotok.evaluation.report import write_report
    from sonotok.tokenizer import load_audio, write_audio

    noisy = discover(EXAMPLES_DIR / "noisy")
    for item in noisy:
        wave = load_audio(item.path, pipe.sample_rate)
        write_audio(
            out / "enhanced" / f"{item.id}.wav",
            pipe.enhance(wave, pipe.sample_rate),
            pipe.sample_rate,
        )
    enhanced = discover(out / "enhanced")
    ids = {it.id for it in noisy}
    clean = [it for it in discover(EXAMPLES_DIR / "clean") if it.id in ids]
    result, examples = evaluate_enhancement(
        noisy, enhanced, clean, speaker_similarity=False, num_examples=len(noisy)
    )
    tokenizer = getattr(pipe.model, "tokenizer", None)  # latent denoisers decode through it
    if tokenizer is not None:
        result["ceiling"] = _ceiling(tokenizer, noisy, enhanced, clean, out)
        result["notes"] = _enhance_notes(result)
    write_report(out, result, examples, title="sonotok demo: speech enhancement (5 dB SNR input)")
    return result


def _ceiling(tokenizer, noisy, enhanced, clean, out: Path) -> dict:
    """What a latent denoiser can reach: its tokenizer's reconstruction of the clean clip.
    Scores that reconstruction against the clean clip, and noisy / enhanced against it
    (written as OUT/vs_reconstruction/report.html)."""
    import torch

    from sonotok.evaluation.data import discover
    from sonotok.evaluation.enhance import evaluate_enhancement
    from sonotok.evaluation.report import write_report
    from sonotok.evaluation.speech import pesq_wb, stoi
    from sonotok.tokenizer import write_audio

    pesq, intelligibility = [], []
    for item in clean:
        wave = item.load(16000)
        with torch.inference_mode():
            rebuilt = tokenizer.reconstruct(wave, sample_rate=16000).detach().cpu().float()
        write_audio(out / "reconstruction" / f"{item.id}.wav", rebuilt, 16000, subtype="FLOAT")
        pesq.append(pesq_wb(wave, rebuilt))
        intelligibility.append(stoi(wave, rebuilt, 16000))
    reference = discover(out / "reconstruction")
    vs, examples = evaluate_enhancement(
        noisy, enhanced, reference, speaker_similarity=False, num_examples=len(noisy),
        settings={"reference": "the tokenizer's reconstruction of each clean clip"},
    )  # fmt: skip
    write_report(out / "vs_reconstruction", vs, examples,
                 title="sonotok demo: enhancement judged against the tokenizer's ceiling")  # fmt: skip
    s = vs["summary"]
    return {
        "reconstruction_pesq": sum(pesq) / len(pesq),
        "reconstruction_stoi": sum(intelligibility) / len(intelligibility),
        "noisy_pesq": s["noisy_pesq"]["mean"],
        "pesq": s["pesq"]["mean"],
        "change_pesq": s["change_pesq"]["mean"],
    }


def _enhance_notes(result: dict) -> list[str]:
    s, c = result["summary"], result["ceiling"]
    return [
        f"Against the clean recording, PESQ goes {s['noisy_pesq']['mean']:.2f} → "
        f"{s['pesq']['mean']:.2f}. Every output is decoded by the tokenizer, whose own "
        f"reconstruction of the clean clip scores PESQ {c['reconstruction_pesq']:.2f} against "
        "it: that reconstruction is what a perfect latent denoiser would output, so the "
        "tokenizer, not the denoiser, sets this ceiling.",
        f"Judged against that reconstruction, PESQ goes {c['noisy_pesq']:.2f} → "
        f"{c['pesq']:.2f} ({c['change_pesq']:+.2f}): the denoiser's own effect; see "
        "vs_reconstruction/report.html.",
        "With the official models: " + OFFICIAL["denoiser"] + ".",
    ]


def _generate(pipe, prompts, args, out: Path, tokenizer) -> dict:
    """Generate, then score every clip without CLAP or downloads: duration, loudness, peak
    (evaluation toolkit), and which example-clip domain its semantic embedding (``tokenizer``)
    lies nearest to, against the domain the prompt asks for."""
    import torch

    from sonotok.evaluation.data import Item, discover
    from sonotok.evaluation.embedders import SonotokEmbedder
    from sonotok.evaluation.generate import evaluate_generation
    from sonotok.evaluation.report import write_report
    from sonotok.tokenizer import write_audio

    waves = pipe(
        list(prompts),
        seconds=args.seconds,
        num_steps=args.steps,
        guidance_scale=args.cfg,
        seed=args.seed,
    )
    items, broken = [], []
    for i, (prompt, wave) in enumerate(zip(prompts, waves)):
        wave = wave.detach().cpu().float()
        if not bool(torch.isfinite(wave).all()):
            broken.append(
                {"file": f"{i:02d}.wav", "message": f"prompt {prompt!r}: NaN/inf samples"}
            )
            continue
        path = out / "generated" / f"{i:02d}.wav"
        write_audio(path, wave, pipe.config.sample_rate, subtype="FLOAT")
        items.append(Item(id=f"{i:02d}", path=path, caption=prompt, domain=PROMPT_DOMAINS.get(prompt)))  # fmt: skip
    result, examples = evaluate_generation(
        items, discover(EXAMPLES_DIR / "clean"), {"sonotok": SonotokEmbedder(tokenizer)},
        num_examples=len(items), domain_judge="sonotok", frechet=False,
        settings={"steps": args.steps, "cfg": args.cfg, "domain judge": "nearest example-clip "
                  "domain in the tokenizer's semantic embeddings"},
    )  # fmt: skip
    result["errors"] += broken
    result["notes"] = [_generate_line(result, len(prompts)) + ".",
                       "With the official models: " + OFFICIAL["generation"] + "."]  # fmt: skip
    write_report(out, result, examples, title="sonotok demo: text-to-audio generation")
    return result


def _generate_line(result: dict, asked: int) -> str:
    """One line on the generated clips: all finite, length, level, nearest-domain check."""
    rows = result["items"]
    if not rows:
        return f"0 of {asked} clips usable (non-finite audio)"
    levels = [r["rms_dbfs"] for r in rows]
    short, long = (f"{f(r['duration_s'] for r in rows):.1f}" for f in (min, max))
    line = (
        f"{len(rows)} of {asked} clips finite, {short if short == long else short + '–' + long}"
        f" s, RMS {min(levels):.0f} to {max(levels):.0f} dBFS, peak ≤ "
        f"{max(r['peak'] for r in rows):.2f}"
    )
    judged = [r for r in rows if "domain_match" in r]
    if judged:
        hits = sum(int(r["domain_match"]) for r in judged)
        line += f"; {hits} of {len(judged)} nearest the prompt's domain (speech/music/sound)"
    return line


def _mean(summary: dict, metric: str) -> str:
    value = (summary.get(metric) or {}).get("mean")
    return "–" if value is None else f"{value:.2f}"


def _reconstruct_line(result: dict) -> str:
    speech = (result.get("per_domain") or {}).get("speech") or result["summary"]
    return (
        f"speech PESQ {_mean(speech, 'pesq')}, STOI {_mean(speech, 'stoi')}; mel distance "
        f"{_mean(result['summary'], 'mel_distance')} over all {len(result['items'])} clips"
    )


def _enhance_lines(result: dict) -> tuple[str, str]:
    """(result against the clean clip, the ceiling and the result against it)."""
    s = result["summary"]
    scores = (
        f"vs the clean clip: PESQ {_mean(s, 'noisy_pesq')} → {_mean(s, 'pesq')} "
        f"({s['change_pesq']['mean']:+.2f}), DNSMOS OVRL {_mean(s, 'noisy_dnsmos_ovrl')} → "
        f"{_mean(s, 'dnsmos_ovrl')}"
    )
    c = result.get("ceiling")
    if c is None:
        return scores, "–"
    return scores, (
        f"the tokenizer's own reconstruction of the clean clip scores PESQ "
        f"{c['reconstruction_pesq']:.2f} (what a perfect latent denoiser would output); "
        f"judged against it: PESQ {c['noisy_pesq']:.2f} → {c['pesq']:.2f} "
        f"({c['change_pesq']:+.2f})"
    )


def _section(job: str, link: str, kind: str, model: str, scores: str, ceiling: str) -> tuple:
    """One row of the index: the model's card and the official line only for bundled ones."""
    mini = model == str(bundled(kind))
    parts = [p for p in (ceiling, MINI_CARD[kind] if mini else "") if p and p != "–"]
    official = OFFICIAL[kind] if mini else "this is the official model"
    if not mini and model != OFFICIAL_IDS[kind]:
        official = "–"
    return (job, link, model, scores, "; ".join(parts) or "–", official)


def _index(out: Path, sections: list[tuple[str, ...]]) -> Path:
    """report.html: one row per job: model, result on the demo clips, the model's measured
    ceiling or card, and what the official models give instead."""
    rows = "".join(
        f"<tr><th><a href='{html.escape(link)}'>{html.escape(title)}</a></th>"
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
        + "</tr>"
        for title, link, *cells in sections
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>sonotok demo</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left;"
        "vertical-align:top;border-bottom:1px solid #ddd}</style></head><body>"
        "<h1>sonotok demo</h1><p>Each job's report has audio players, spectrograms and "
        "per-file scores. The bundled sonotok-mini models are small demonstrators trained for "
        "an hour on a 2-core CPU on a synthetic corpus: read each result next to what that "
        "model can reach (its measured ceiling and model card, sonotok/mini/*/README.md) and "
        "next to what the official models give. PESQ and STOI are speech measures.</p>"
        "<table><tr><th>job</th><th>model</th><th>on the demo clips</th>"
        "<th>measured ceiling / model card</th><th>with the official models</th></tr>"
        f"{rows}</table></body></html>\n"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def run(args) -> int:
    import torch

    from sonotok.enhancement.pipeline import EnhancementPipeline
    from sonotok.generation.pipeline import TextToAudioPipeline
    from sonotok.tokenizer.interface import load_tokenizer

    if args.seconds <= 0 or args.steps < 1:
        print("error: --seconds must be > 0 and --steps >= 1", file=sys.stderr)
        return 2
    out = args.output
    try:
        _prepare_output(out, args.overwrite)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    device = options.resolve_device(args.device)
    prompts = args.prompt or list(PROMPTS)
    names = {
        "tokenizer": model_or_default(args.tokenizer, "tokenizer"),
        "denoiser": model_or_default(args.denoiser, "denoiser"),
        "generation": model_or_default(args.generator, "generation"),
    }
    started = time.perf_counter()
    sections = []
    try:
        print("[1/3] reconstructing the example clips ...", file=sys.stderr)
        tokenizer = load_tokenizer(names["tokenizer"], device=device)
        result = _reconstruct(tokenizer, out / "reconstruct")
        sections.append(_section("reconstruction", "reconstruct/report.html", "tokenizer",
                                 names["tokenizer"], _reconstruct_line(result), "–"))  # fmt: skip
        print("[2/3] enhancing the noisy speech example ...", file=sys.stderr)
        enhancer = EnhancementPipeline.from_pretrained(names["denoiser"], device=device)
        result = _enhance(enhancer, out / "enhance")
        sections.append(_section("speech enhancement", "enhance/report.html", "denoiser",
                                 names["denoiser"], *_enhance_lines(result)))  # fmt: skip
        print(f"[3/3] generating {len(prompts)} clip(s) from text ...", file=sys.stderr)
        generator = TextToAudioPipeline.from_pretrained(names["generation"], device=device)
        with torch.inference_mode():
            result = _generate(generator, prompts, args, out / "generate", tokenizer)
        sections.append(_section("text-to-audio", "generate/report.html", "generation",
                                 names["generation"], _generate_line(result, len(prompts)), "–"))  # fmt: skip
    except Exception as err:  # a model or metric that cannot run here: say which step and why
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    finally:
        (out / MARKER).write_text(json.dumps({"models": names, "prompts": prompts}, indent=2))
    report = _index(out, sections)
    for job, _, _, scores, ceiling, official in sections:  # the index, in short, on stderr
        print(f"{job}: {scores}", file=sys.stderr)
        for label, text in (("ceiling / card", ceiling), ("official models", official)):
            if text != "–":
                print(f"  {label}: {text}", file=sys.stderr)
    print(f"done in {time.perf_counter() - started:.0f} s; open {report}", file=sys.stderr)
    return 0
