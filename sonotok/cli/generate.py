"""`sonotok generate` (text -> audio files) and `sonotok train generation`."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sonotok.cli.common import (
    TRAIN_HELP,
    add_batch_option,
    add_device_option,
    add_dtype_option,
    add_model_option,
    add_output_options,
    add_recipe_options,
    add_resume_option,
    choose_model,
    command_group,
)
from sonotok.core import options
from sonotok.core.errors import SonotokError

if TYPE_CHECKING:
    from sonotok.generation.prompts import PromptItem

# sonotok.generation.splice.DEFAULT_CROSSFADE, spelled out so `--help` imports no generation
# code (tests/cli/test_startup.py checks that the two agree).
DEFAULT_CROSSFADE = 0.05


def _error(message: str) -> SonotokError:
    """The generation package's error (imported when a command runs, not when it parses)."""
    from sonotok.generation.errors import GenerationError

    return GenerationError(message)


def register(subparsers) -> None:
    """Add `generate` and `train generation` to the top-level `sonotok` subparsers."""
    gen = subparsers.add_parser(
        "generate",
        help="text -> audio with a trained TextToAudioPipeline",
        description="Generate audio from text prompts with a flow-matching DiT on tokenizer latents.",
    )
    gen.add_argument("prompt", nargs="*", help="text prompt(s)")
    gen.add_argument(
        "--prompts",
        type=Path,
        help="prompts file: .txt with one prompt per line (# comments skipped), or a manifest "
        "(.csv/.tsv with a header row, or .jsonl) with columns caption (or prompt) and optional "
        "id, seconds, seed; rows with an id are written as ID.wav (pairs with `sonotok eval "
        "generate`), others as NNN_prompt.wav",
    )
    gen.add_argument(
        "--inpaint",
        type=Path,
        metavar="AUDIO",
        help="regenerate --span START END of this clip from the prompt; outside the span the "
        "clip comes back unchanged",
    )
    gen.add_argument(
        "--span",
        type=options.non_negative_float,
        nargs=2,
        metavar=("START", "END"),
        help="seconds of the --inpaint clip to regenerate",
    )
    gen.add_argument(
        "--continue",
        dest="continue_audio",
        type=Path,
        metavar="AUDIO",
        help="extend this clip by --seconds of new audio generated from the prompt; the clip "
        "comes back unchanged except its last --crossfade seconds",
    )
    gen.add_argument(
        "--crossfade",
        type=options.non_negative_float,
        default=DEFAULT_CROSSFADE,
        help="seconds over which --inpaint/--continue fade between the input clip and the "
        "generated audio at each border (inside the span; equal-power for --inpaint, linear for "
        "--continue; default: %(default)s)",
    )
    add_output_options(
        gen,
        "output .wav for one prompt, else a folder (default: out.wav / generated/)",
        required=False,
        overwrite="replace outputs that already exist (default: skip their prompts)",
        type=Path,
    )
    add_model_option(
        gen,
        "generation",
        what="text-to-audio pipeline: a folder from `sonotok train generation` or a hub id",
    )
    gen.add_argument(
        "--tokenizer", default=None, help="override the pipeline's tokenizer (folder or hub id)"
    )
    gen.add_argument(
        "--seconds",
        type=options.seconds,
        default=None,
        help="duration per prompt (default: 10, or predicted by Dasheng-AudioGen)",
    )
    gen.add_argument(
        "--steps", type=options.positive_int, default=25, help="Euler steps (default 25)"
    )
    gen.add_argument(
        "--cfg",
        type=options.guidance_scale,
        default=5.0,
        help="classifier-free guidance scale, 0 to 100 (default 5.0)",
    )
    gen.add_argument("--negative-prompt", default=None, help="text to steer away from (CFG)")
    gen.add_argument(
        "--seed", type=options.seed, default=None, help="seed in [0, 2**63); prompt i uses seed + i"
    )
    add_batch_option(gen, help="prompts per sampling pass (default: %(default)s)")
    add_device_option(gen)
    add_dtype_option(gen, ("fp32", "bf16"), help="DiT compute precision (default: %(default)s)")
    gen.set_defaults(func=run_generate)

    train = command_group(subparsers, "train", TRAIN_HELP)
    tr = train.add_parser(
        "generation",
        help="train the text-to-audio DiT on a latent dataset",
        description="Rectified-flow DiT training on a latent dataset; --resume continues a run "
        "from its newest checkpoint. Multi-GPU: accelerate launch -m sonotok.cli train generation ...",
    )
    add_recipe_options(tr, "configs/generation/tiny.yaml")
    add_resume_option(tr)
    tr.set_defaults(func=run_train)


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "prompt"


def _read_prompts(args) -> list[PromptItem]:
    from sonotok.generation.prompts import PromptItem, read_prompt_file

    items = [PromptItem(p.strip()) for p in args.prompt if p.strip()]
    if args.prompts is not None:
        items += read_prompt_file(args.prompts)
    if not items:
        raise _error("no prompt given; pass text or --prompts FILE")
    return items


def _check_edit_options(args, items: list[PromptItem]) -> None:
    """--inpaint needs --span and keeps the clip's length; --continue needs a length."""
    if args.inpaint is not None and args.continue_audio is not None:
        raise _error("--inpaint and --continue exclude each other; pick one")
    if args.inpaint is None and args.span is not None:
        raise _error("--span applies to --inpaint AUDIO only; add --inpaint or drop it")
    if args.inpaint is not None:
        if args.span is None:
            raise _error("--inpaint needs --span START END (seconds to regenerate)")
        if args.seconds is not None or any(it.seconds is not None for it in items):
            raise _error(
                "--inpaint keeps the clip's length; drop --seconds (and any seconds column)"
            )
    if args.continue_audio is not None and any(
        (it.seconds if it.seconds is not None else args.seconds) is None for it in items
    ):
        raise _error("--continue needs --seconds N (seconds of new audio to add)")


def _target_names(items: list[PromptItem]) -> list[str]:
    """File names inside the output folder: ID.wav, or NNN_prompt.wav without ids."""
    return [
        f"{it.id}.wav" if it.id is not None else f"{i:03d}_{_slug(it.prompt)}.wav"
        for i, it in enumerate(items)
    ]


def _batches(items: list[PromptItem], size: int, args) -> list[tuple[int, int]]:
    """(start, stop) runs of at most `size` items that one call can take together: rows that
    set their seconds are not mixed with rows that leave it to the model, --continue batches
    share one length."""

    def key(it: PromptItem):
        secs = it.seconds if it.seconds is not None else args.seconds
        return secs if args.continue_audio is not None else secs is None

    spans, start = [], 0
    for i in range(1, len(items) + 1):
        if i == len(items) or i - start == size or key(items[i]) != key(items[start]):
            spans.append((start, i))
            start = i
    return spans


def _seeds(args, items: list[PromptItem], start: int) -> list[int | None]:
    """A row's own seed, else --seed + its index in the whole list (same for any batch size)."""
    return [
        it.seed if it.seed is not None else None if args.seed is None else args.seed + start + j
        for j, it in enumerate(items)
    ]


def _run_batch(pipe, args, items: list[PromptItem], start: int, audio) -> list:
    """Waveforms for one batch: text-to-audio, inpainting or continuation."""
    seeds = _seeds(args, items, start)
    settings = dict(
        num_steps=args.steps, guidance_scale=args.cfg, negative_prompt=args.negative_prompt
    )
    if pipe.batch_independent:
        settings["seed"] = seeds
    else:  # e.g. Dasheng-AudioGen: seeded batches are single prompts (see run_generate)
        settings["seed"] = seeds[0]
    prompts = [it.prompt for it in items]
    secs = [it.seconds if it.seconds is not None else args.seconds for it in items]
    if args.inpaint is not None:
        start_s, end_s = args.span
        return pipe.inpaint(prompts, audio, start_s, end_s, crossfade=args.crossfade, **settings)
    if args.continue_audio is not None:
        return pipe.continuation(prompts, audio, secs[0], crossfade=args.crossfade, **settings)
    if secs[0] is not None:
        settings["seconds"] = secs
    return pipe(prompts, **settings)


def _edit_audio(args, pipe):
    """The --inpaint / --continue clip at the pipeline's rate (None without either)."""
    path = args.inpaint if args.inpaint is not None else args.continue_audio
    if path is None:
        return None
    from sonotok.core.audio import load_audio

    audio = load_audio(path, pipe.config.sample_rate)
    rate = pipe.config.sample_rate
    duration = audio.shape[-1] / rate
    if args.inpaint is not None and not args.span[0] < args.span[1] <= duration + 0.5 / rate:
        raise _error(
            f"--span {args.span[0]:g} {args.span[1]:g}: need START < END <= {duration:.3f} s "
            f"(the length of {path})"
        )
    return audio


def run_generate(args: argparse.Namespace) -> int:
    import torch

    from sonotok.core.audio import write_audio
    from sonotok.core.io import (
        check_finite,
        disk_full_error,
        is_disk_full,
        remove_stale_temporaries,
    )
    from sonotok.core.options import resolve_device
    from sonotok.generation.factory import load_pipeline

    try:
        items = _read_prompts(args)
        _check_edit_options(args, items)
        prompts = [it.prompt for it in items]
        if (
            (args.seconds is not None and args.seconds <= 0)
            or args.steps < 1
            or args.batch_size < 1
        ):
            raise _error("--seconds must be > 0, --steps and --batch-size >= 1")
        device = resolve_device(args.device)
        choose_model(args, "generation")
        pipe = load_pipeline(args.model, tokenizer=args.tokenizer, device=device)
        pipe.to(device, dtype=torch.bfloat16 if args.dtype == "bf16" else None)
        if pipe.tokenizer is None:
            raise _error(f"{args.model}: pipeline has no tokenizer/; pass --tokenizer FOLDER_OR_ID")
        audio = _edit_audio(args, pipe)
    except SonotokError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.output is not None and args.output.suffix.lower() == ".wav":
        single = len(prompts) == 1
    else:
        single = len(prompts) == 1 and args.output is None and items[0].id is None
    if single:
        targets = [args.output or Path("out.wav")]
    else:
        folder = args.output or Path("generated")
        targets = [folder / name for name in _target_names(items)]
    seeded = args.seed is not None or any(it.seed is not None for it in items)
    size = 1 if seeded and not pipe.batch_independent else args.batch_size
    remove_stale_temporaries({t.parent for t in targets})
    todo = [args.overwrite or not t.exists() for t in targets]
    failed = written = 0
    for start, stop in _batches(items, size, args):
        batch = prompts[start:stop]
        if not any(todo[start:stop]):  # every output exists: nothing to compute
            continue
        try:  # the whole batch runs even if some outputs exist: seeds stay per prompt
            waves = _run_batch(pipe, args, items[start:stop], start, audio)
        except (SonotokError, RuntimeError, ValueError, MemoryError) as err:  # e.g. NaN latents
            for j, prompt in enumerate(batch, start):
                if todo[j]:
                    print(f"error: prompt {j} {prompt!r}: {err}", file=sys.stderr)
                    failed += 1
            continue
        for j, wave in enumerate(waves, start):
            if not todo[j]:
                continue
            try:
                check_finite(wave, "generated audio", f"prompt {j} {prompts[j]!r}")
                write_audio(targets[j], wave.float().numpy(), pipe.config.sample_rate)
            except OSError as err:
                if is_disk_full(err):
                    left = sum(todo[j:])
                    print(
                        f"error: {disk_full_error(err, targets[j])}; {written} file(s) written, "
                        f"{left} not written. Free some space and run again: finished outputs "
                        "are skipped",
                        file=sys.stderr,
                    )
                    return 1
                print(f"error: {targets[j]}: {err}", file=sys.stderr)
                failed += 1
                continue
            except SonotokError as err:  # NaN/inf audio: the model is broken
                print(f"error: {err}", file=sys.stderr)
                failed += 1
                continue
            written += 1
            print(targets[j])
    skipped = todo.count(False)
    if skipped:
        print(
            f"generate: {written} written, {skipped} skipped (output exists; pass --overwrite to "
            "replace)",
            file=sys.stderr,
        )
    return 1 if failed else 0


def run_train(args: argparse.Namespace) -> int:
    from sonotok.generation.config import load_config
    from sonotok.generation.train import train

    try:
        cfg = load_config(args.config, args.overrides)
        out = train(cfg, resume=args.resume)
    except SonotokError as err:  # config, data, checkpoint, model: one line
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"pipeline written to {out / 'pipeline'}")
    return 0
