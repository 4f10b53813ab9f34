"""`sonotok generate` (text -> audio files) and `sonotok train generation`."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .hub import GenerationError


def register(subparsers) -> None:
    """Add `generate` and `train generation` to the top-level `sonotok` subparsers."""
    from sonotok.tokenizer.cli import command_group

    gen = subparsers.add_parser(
        "generate",
        help="text -> audio with a trained TextToAudioPipeline",
        description="Generate audio from text prompts with a flow-matching DiT on tokenizer latents.",
    )
    gen.add_argument("prompt", nargs="*", help="text prompt(s)")
    gen.add_argument(
        "--prompts", type=Path, help="text file, one prompt per line (# comments skipped)"
    )
    gen.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="output .wav for one prompt, else a folder (default: out.wav / generated/)",
    )
    gen.add_argument(
        "--model",
        default=None,
        help="pipeline folder (from `sonotok train generation`) or hub id, e.g. mispeech/Dasheng-AudioGen "
        "(default: that one if it is in the local Hugging Face cache, else the bundled offline "
        "sonotok-mini generator)",
    )
    gen.add_argument(
        "--tokenizer", default=None, help="override the pipeline's tokenizer (folder or hub id)"
    )
    gen.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="duration per prompt (default: 10, or predicted by Dasheng-AudioGen)",
    )
    gen.add_argument("--steps", type=int, default=25, help="Euler steps (default 25)")
    gen.add_argument(
        "--cfg", type=float, default=5.0, help="classifier-free guidance scale (default 5.0)"
    )
    gen.add_argument("--negative-prompt", default=None, help="text to steer away from (CFG)")
    gen.add_argument("--seed", type=int, default=None, help="seed; prompt i uses seed + i")
    gen.add_argument("--batch-size", type=int, default=8)
    gen.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)"
    )
    gen.add_argument(
        "--dtype", choices=["fp32", "bf16"], default="fp32", help="DiT compute precision"
    )
    gen.set_defaults(func=run_generate)

    train = command_group(
        subparsers, "train", "train a model: sonotok train WHAT --config FILE [--set KEY=VALUE ...]"
    )
    tr = train.add_parser(
        "generation",
        help="train the text-to-audio DiT on a latent dataset",
        description="Rectified-flow DiT training on a latent dataset; resumes from the latest checkpoint. "
        "Multi-GPU: accelerate launch -m sonotok.cli train generation ...",
    )
    tr.add_argument(
        "--config", type=Path, required=True, help="YAML recipe, e.g. configs/generation/tiny.yaml"
    )
    tr.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.max_steps=1000 (repeatable)",
    )
    tr.set_defaults(func=run_train)


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "prompt"


def _read_prompts(args) -> list[str]:
    prompts = [p for p in args.prompt if p.strip()]
    if args.prompts is not None:
        if not args.prompts.is_file():
            raise GenerationError(f"{args.prompts}: prompts file not found")
        lines = args.prompts.read_text(encoding="utf-8").splitlines()
        prompts += [
            line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
        ]
    if not prompts:
        raise GenerationError("no prompt given; pass text or --prompts FILE")
    return prompts


def run_generate(args: argparse.Namespace) -> int:
    import torch

    from sonotok.tokenizer import write_audio
    from sonotok.tokenizer.cli import choose_model

    from .pipeline import TextToAudioPipeline

    try:
        prompts = _read_prompts(args)
        if (
            (args.seconds is not None and args.seconds <= 0)
            or args.steps < 1
            or args.batch_size < 1
        ):
            raise GenerationError("--seconds must be > 0, --steps and --batch-size >= 1")
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        choose_model(args, "generation")
        pipe = TextToAudioPipeline.from_pretrained(
            args.model, tokenizer=args.tokenizer, device=device
        )
        pipe.to(device, dtype=torch.bfloat16 if args.dtype == "bf16" else None)
        if pipe.tokenizer is None:
            raise GenerationError(
                f"{args.model}: pipeline has no tokenizer/; pass --tokenizer FOLDER_OR_ID"
            )
    except GenerationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    single = len(prompts) == 1 and (args.output is None or args.output.suffix.lower() == ".wav")
    if single:
        targets = [args.output or Path("out.wav")]
    else:
        folder = args.output or Path("generated")
        targets = [folder / f"{i:03d}_{_slug(p)}.wav" for i, p in enumerate(prompts)]
    failed = 0
    for start in range(0, len(prompts), args.batch_size):
        batch = prompts[start : start + args.batch_size]
        try:
            waves = pipe(
                batch,
                **({} if args.seconds is None else {"seconds": args.seconds}),
                num_steps=args.steps,
                guidance_scale=args.cfg,
                negative_prompt=args.negative_prompt,
                seed=None if args.seed is None else args.seed + start,
            )
        except (GenerationError, RuntimeError) as err:
            for prompt in batch:
                print(f"{prompt!r}: failed: {err}", file=sys.stderr)
            failed += len(batch)
            continue
        for wave, target in zip(waves, targets[start : start + args.batch_size]):
            target.parent.mkdir(parents=True, exist_ok=True)
            write_audio(target, wave.float().numpy(), pipe.config.sample_rate)
            print(target)
    return 1 if failed else 0


def run_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import train

    try:
        cfg = load_config(args.config, args.overrides)
        out = train(cfg)
    except GenerationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"pipeline written to {out / 'pipeline'}")
    return 0
