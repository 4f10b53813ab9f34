"""Generation speed: seconds to sample N seconds of latents (Euler, CFG) and training steps/s.

Random weights at the configured size (default: the paper preset, ~714M parameters); text states
are random tensors of the text encoder's width, so no download is needed. Optionally decodes with
a full-size random DashengTokenizer decoder (`--decode`). `--official` also times our
implementation of the released Dasheng-AudioGen (1536x32), and `--reference-dir DIR` the reference
code itself (DIR: a folder holding the HF repo's dit.py, modules.py, attention.py as a package).

    python benchmarks/generation_speed.py --device cuda --batch-sizes 1 16 --dtype bf16
    python benchmarks/generation_speed.py --config configs/generation/tiny.yaml --device cpu
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from sonotok.generation.config import load_config
from sonotok.generation.dit import DiT
from sonotok.generation.flow import (
    FlowMatchingObjective,
    make_scheduler,
    rae_shift_alpha,
    sample,
    set_sigmas,
)

ROOT = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_sampling(
    model, batch, frames, steps, cfg, text_len, device, dtype, repeats, decoder=None
) -> float:
    d, c = model.config.latent_dim, model.config.context_dim
    noise = torch.randn(batch, frames, d, device=device)
    ctx = torch.randn(batch, text_len, c, device=device)
    cmask = torch.ones(batch, text_len, dtype=torch.bool, device=device)
    scheduler = make_scheduler()
    set_sigmas(scheduler, steps, -1.0, rae_shift_alpha(frames, d), device=device)
    times = []
    for i in range(repeats + 1):  # first run is warm-up
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            z = sample(model, scheduler, noise, ctx, None, cmask, guidance_scale=cfg)
            if decoder is not None:
                decoder.decode(z.float())
        sync(device)
        if i:
            times.append(time.perf_counter() - start)
    return min(times)


def time_official(
    batch, frames, steps, cfg, text_len, device, dtype, repeats, reference_dir=None
) -> dict:
    """Sampling time of Dasheng-AudioGen's DiT (ours, and the reference code when given)."""
    from sonotok.generation.audiogen import AudioGenConfig, DashengAudioGen, official_sigmas

    config = AudioGenConfig()
    model = DashengAudioGen(config).to(device).eval()
    content = torch.randn(batch, text_len, config.content_dim, device=device)
    cmask = torch.ones(batch, text_len, dtype=torch.bool, device=device)
    noise = torch.randn(batch, config.latent_dim, frames, device=device)
    lengths = torch.full((batch,), frames, device=device)
    scheduler = make_scheduler()

    def ours():
        scheduler.set_timesteps(sigmas=official_sigmas(steps, -1.0), device=device)
        model.sample(content, cmask, lengths, noise, scheduler, cfg)

    result = {"ours": _best(ours, device, dtype, repeats)}
    if reference_dir is not None:
        import importlib
        import sys

        folder = Path(reference_dir).resolve()
        sys.path.insert(0, str(folder.parent))
        ref_dit = importlib.import_module(f"{folder.name}.dit")
        c = config
        reference = (
            ref_dit.LayerFusionAudioDiT(
                img_size=1000,
                patch_size=1,
                in_chans=c.latent_dim,
                out_chans=c.latent_dim,
                input_type="1d",
                embed_dim=c.dit_embed_dim,
                depth=c.dit_depth,
                num_heads=c.dit_num_heads,
                mlp_ratio=c.dit_mlp_ratio,
                qk_norm=c.dit_qk_norm,
                norm_layer=c.dit_norm_layer,
                act_layer=c.dit_act_layer,
                context_norm=c.dit_context_norm,
                time_fusion=c.dit_time_fusion,
                ada_sola_rank=c.dit_ada_sola_rank,
                ada_sola_alpha=c.dit_ada_sola_alpha,
                ta_context_dim=c.dit_ta_context_dim,
                ta_context_fusion=c.dit_ta_context_fusion,
                ta_context_norm=c.dit_ta_context_norm,
                context_dim=c.dit_context_dim,
                context_fusion=c.dit_context_fusion,
                context_max_length=None,
                context_pe_method=c.dit_context_pe_method,
                pe_method=c.dit_pe_method,
                rope_mode=c.dit_rope_mode,
                use_conv=True,
                skip=True,
                skip_norm=True,
            )
            .to(device)
            .eval()
        )
        reference.load_state_dict(model.backbone.state_dict())
        ta = torch.randn(2 * batch, frames, c.dit_ta_context_dim, device=device)
        x_mask = torch.ones(2 * batch, frames, dtype=torch.bool, device=device)
        sigmas = official_sigmas(steps, -1.0) + [0.0]

        def theirs():
            x = noise
            for i in range(steps):
                t = torch.tensor(sigmas[i] * 1000, device=device)
                v_u, v_c = reference(
                    torch.cat([x, x]),
                    t,
                    ta,
                    torch.cat([content, content]),
                    x_mask,
                    torch.cat([cmask, cmask]),
                ).chunk(2)
                x = x + (sigmas[i + 1] - sigmas[i]) * (v_u + cfg * (v_c - v_u))

        result["reference"] = _best(theirs, device, dtype, repeats)
    return result


def _best(fn, device, dtype, repeats) -> float:
    times = []
    for i in range(repeats + 1):  # first run is warm-up
        sync(device)
        start = time.perf_counter()
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32),
        ):
            fn()
        sync(device)
        if i:
            times.append(time.perf_counter() - start)
    return round(min(times), 3)


def time_training(model, batch, frames, text_len, device, dtype, steps) -> float:
    d, c = model.config.latent_dim, model.config.context_dim
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    objective = FlowMatchingObjective()
    x0 = torch.randn(batch, frames, d, device=device)
    mask = torch.ones(batch, frames, dtype=torch.bool, device=device)
    ctx = torch.randn(batch, text_len, c, device=device)
    model.train()
    for i in range(steps + 1):
        if i == 1:
            sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = objective.loss(model, x0, ctx, mask)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync(device)
    model.eval()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "generation" / "paper.yaml"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--cfg", type=float, default=5.0)
    parser.add_argument("--text-len", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument(
        "--train-steps", type=int, default=10, help="0 skips the training measurement"
    )
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument(
        "--decode", action="store_true", help="include a full-size random tokenizer decoder"
    )
    parser.add_argument(
        "--official",
        action="store_true",
        help="also time our Dasheng-AudioGen implementation (1536x32, random weights)",
    )
    parser.add_argument(
        "--reference-dir",
        default=None,
        help="with --official: folder holding the HF repo's dit.py, modules.py, attention.py "
        "(importable as a package) to time the reference code too",
    )
    args = parser.parse_args()
    if args.reference_dir is not None and not args.official:
        parser.error("--reference-dir needs --official")
    if args.reference_dir is not None and not (Path(args.reference_dir) / "dit.py").is_file():
        parser.error(f"--reference-dir {args.reference_dir}: no dit.py there")

    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    cfg = load_config(args.config)
    model = DiT(cfg.model).to(device).eval()
    model.enable_gradient_checkpointing(args.gradient_checkpointing)
    frames = round(args.seconds * 25)
    decoder = None
    if args.decode:
        from sonotok.tokenizer import AudioTokenizer, TokenizerConfig

        decoder = AudioTokenizer(TokenizerConfig()).to(device).eval()
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "dtype": args.dtype,
        "params_M": round(model.num_parameters() / 1e6, 1),
        "seconds_of_audio": args.seconds,
        "steps": args.steps,
        "cfg": args.cfg,
        "decode": args.decode,
        "sample_seconds": {},
    }
    with torch.no_grad():
        for b in args.batch_sizes:
            t = time_sampling(
                model,
                b,
                frames,
                args.steps,
                args.cfg,
                args.text_len,
                device,
                dtype,
                args.repeats,
                decoder,
            )
            result["sample_seconds"][f"batch_{b}"] = round(t, 3)
            print(
                f"batch {b}: {t:.3f} s for {args.seconds:g} s of audio ({args.steps} steps, CFG {args.cfg})",
                flush=True,
            )
    if args.official:
        result["official_sample_seconds"] = {}
        for b in args.batch_sizes:
            timing = time_official(
                b,
                frames,
                args.steps,
                args.cfg,
                args.text_len,
                device,
                dtype,
                args.repeats,
                args.reference_dir,
            )
            result["official_sample_seconds"][f"batch_{b}"] = timing
            print(f"Dasheng-AudioGen batch {b}: {timing}", flush=True)
    if args.train_steps:
        rate = time_training(
            model, args.train_batch, frames, args.text_len, device, dtype, args.train_steps
        )
        result["train_steps_per_s"] = round(rate, 3)
        result["train_batch"] = args.train_batch
        print(
            f"training: {rate:.3f} steps/s at batch {args.train_batch} x {frames} frames",
            flush=True,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
