"""`sonotok demo`: reconstruct, enhance and generate on bundled example clips, offline,
and write one HTML report (the evaluation toolkit's) to open and listen to.

Models default like every other command: the official release when it is in the local
Hugging Face cache, else the bundled sonotok-mini models (sonotok/mini/).
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import sys
import time
from pathlib import Path

from sonotok.defaults import MINI_DIR, model_or_default

EXAMPLES_DIR = MINI_DIR / "examples"  # clean/<domain>/*.wav, noisy/speech/*.wav (5 dB SNR)
MARKER = "demo.json"  # a folder holding this was written by the demo and may be replaced
PROMPTS = (
    "Synthetic English speech, female voice, normal rate.",
    "Acoustic grand piano in C major at 100 BPM, with a cheerful mood.",
    "A dog barking.",
    "A church bell ringing.",
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="reconstruct, enhance and generate on bundled clips; writes an HTML report",
        description="Run sonotok's three main jobs on the example clips shipped with the package "
        "— tokenizer reconstruction, speech enhancement of a noisy clip, text-to-audio generation "
        "— and score them with the evaluation toolkit. Works offline: without --tokenizer / "
        "--denoiser / --generator it uses the official models if they are in the local Hugging "
        "Face cache, else the bundled sonotok-mini models, and says which. Open "
        "OUTPUT/report.html in a browser to listen.",
        epilog="examples:\n"
        "  sonotok demo -o out/demo\n"
        "  sonotok demo -o out/demo --prompt 'A cello melody in D minor.' --steps 50\n"
        "  sonotok demo -o out/demo --tokenizer mispeech/dashengtokenizer --overwrite",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-o", "--output", type=Path, default=Path("sonotok-demo"),
                   help="folder for the report and audio (default: %(default)s)")  # fmt: skip
    p.add_argument("--tokenizer", default=None, help="tokenizer folder or hub id")
    p.add_argument("--denoiser", default=None, help="enhancement model folder or hub id")
    p.add_argument("--generator", default=None, help="generation pipeline folder or hub id")
    p.add_argument("--prompt", action="append", default=None,
                   help="text prompt (repeatable; default: four prompts across speech, music and sounds)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=4.0, help="generated length (default 4)")
    p.add_argument("--steps", type=int, default=25, help="sampling steps (default 25)")
    p.add_argument("--cfg", type=float, default=3.0, help="guidance scale (default 3)")
    p.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    p.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUTPUT even if it holds files the demo did not write")  # fmt: skip
    p.set_defaults(func=run)


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
    write_report(out, result, examples, title="sonotok demo: speech enhancement (5 dB SNR input)")
    return result


def _generate(pipe, prompts, args, out: Path) -> dict:
    from sonotok.evaluation.data import Item
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
    items = []
    for i, (prompt, wave) in enumerate(zip(prompts, waves)):
        path = out / "generated" / f"{i:02d}.wav"
        write_audio(path, wave.detach().cpu().float(), pipe.config.sample_rate)
        items.append(Item(id=f"{i:02d}", path=path, caption=prompt))
    result, examples = evaluate_generation(
        items, [], {}, num_examples=len(items), settings={"steps": args.steps, "cfg": args.cfg}
    )
    write_report(out, result, examples, title="sonotok demo: text-to-audio generation")
    return result


def _headline(result: dict, metrics: tuple[str, ...]) -> str:
    summary = result.get("summary") or {}
    parts = [f"{m} {summary[m]['mean']:.2f}" for m in metrics if m in summary]
    return ", ".join(parts) or "no scores"


def _index(out: Path, sections: list[tuple[str, str, str, str]]) -> Path:
    """report.html: one line per job (model used, headline scores, link to its report)."""
    rows = "".join(
        f"<tr><th><a href='{html.escape(link)}'>{html.escape(title)}</a></th>"
        f"<td>{html.escape(model)}</td><td>{html.escape(scores)}</td></tr>"
        for title, link, model, scores in sections
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>sonotok demo</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left}"
        "</style></head><body><h1>sonotok demo</h1><p>Each job's report has audio players, "
        "spectrograms and per-file scores against the clean reference. The bundled sonotok-mini "
        "models are small demonstrators trained on a synthetic corpus; their model cards "
        "(sonotok/mini/*/README.md) give test-split metrics and limits.</p>"
        "<table><tr><th>job</th><th>model</th>"
        f"<th>scores</th></tr>{rows}</table></body></html>\n"
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def run(args) -> int:
    import torch

    from sonotok.enhancement.pipeline import EnhancementPipeline
    from sonotok.generation.pipeline import TextToAudioPipeline
    from sonotok.tokenizer import AudioTokenizer
    from sonotok.tokenizer.cli import pick_device

    if args.seconds <= 0 or args.steps < 1:
        print("error: --seconds must be > 0 and --steps >= 1", file=sys.stderr)
        return 2
    out = args.output
    try:
        _prepare_output(out, args.overwrite)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    device = pick_device(args.device)
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
        tokenizer = AudioTokenizer.from_pretrained(names["tokenizer"], device=device)
        result = _reconstruct(tokenizer, out / "reconstruct")
        sections.append(("reconstruction", "reconstruct/report.html", names["tokenizer"],
                         _headline(result, ("pesq", "stoi", "mel_distance"))))  # fmt: skip
        print("[2/3] enhancing the noisy speech example ...", file=sys.stderr)
        enhancer = EnhancementPipeline.from_pretrained(names["denoiser"], device=device)
        result = _enhance(enhancer, out / "enhance")
        sections.append(("speech enhancement", "enhance/report.html", names["denoiser"],
                         _headline(result, ("noisy_pesq", "pesq", "noisy_dnsmos_ovrl", "dnsmos_ovrl"))))  # fmt: skip
        print(f"[3/3] generating {len(prompts)} clip(s) from text ...", file=sys.stderr)
        generator = TextToAudioPipeline.from_pretrained(names["generation"], device=device)
        with torch.inference_mode():
            result = _generate(generator, prompts, args, out / "generate")
        sections.append(("text-to-audio", "generate/report.html", names["generation"],
                         f"{len(prompts)} clips, {args.steps} steps, cfg {args.cfg}"))  # fmt: skip
    except Exception as err:  # a model or metric that cannot run here: say which step and why
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    finally:
        (out / MARKER).write_text(json.dumps({"models": names, "prompts": prompts}, indent=2))
    report = _index(out, sections)
    print(f"done in {time.perf_counter() - started:.0f} s; open {report}", file=sys.stderr)
    return 0
