"""SemantiCodec speed: real-time factor of ours vs the reference, same weights, same run.

Encode (`bench_encode`): full-size encoder (AudioMAE ViT-B/16 + LSTM quantiser of the chosen
token rate) with random weights, exported in the official encoder.ckpt layout so the reference
(github:haoheliu/SemantiCodec-inference, run under another interpreter: --reference-python,
with --reference-path on its PYTHONPATH: the checkout and its extra packages) loads the very same
weights. Rows: ours batched (all clips in one call; their 10.24 s segments share passes of
`chunks_per_pass`), ours one clip at a time, the reference one clip at a time (its only mode:
fbank + `encoder(mel)` per file). The share of tokens equal to the reference's (ours one by one)
is the last column: near-ties of random weights may flip a few (full-size parity with the
reference's own initialisation measured 100 %).
Decode rows (`bench_decode`) belong to the decoder side of the family.

RTF = processing seconds / audio seconds (lower is faster), best of --repeats.

    python benchmarks/semanticodec_speed.py --clips 4 --seconds 20
    python benchmarks/semanticodec_speed.py --reference-python /work/refvenv/bin/python \\
        --reference-path /work/refdeps/semanticodec:/work/refsrc/semanticodec --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

SR = 16000


def test_clips(clips: int, seconds: float) -> list[np.ndarray]:
    """Gliding harmonics with a syllable-rate envelope plus noise; lengths vary ±20 %."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(clips):
        n = int(seconds * SR * (0.8 + 0.4 * i / max(1, clips - 1)))
        t = np.arange(n) / SR
        pitch = 150 + 50 * np.sin(2 * np.pi * 0.3 * t + i)
        phase = 2 * np.pi * np.cumsum(pitch) / SR
        wave = sum(np.sin(k * phase) / k for k in range(1, 6)) * (
            0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
        )
        out.append((0.2 * wave + 0.01 * rng.standard_normal(n)).astype(np.float32))
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _best(fn, repeats: int, device: str) -> float:
    best = math.inf
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def build_full_encoder(token_rate: int, folder: Path):
    """A full-size random SemantiCodec encoder, also written in the official layout."""
    import torch

    from sonotok.tokenizer.semanticodec import SemantiCodec, SemantiCodecConfig
    from sonotok.tokenizer.semanticodec.configs import centroid_file, checkpoint_folder
    from sonotok.tokenizer.semanticodec.loading import official_encoder_state

    torch.manual_seed(0)
    config = SemantiCodecConfig.official(token_rate, 8192, num_centroids=4096)
    codec = SemantiCodec(config)
    with torch.no_grad():
        codec.encoder.centroids.normal_()
        codec.encoder.acoustic_codebook.normal_()
        codec.encoder.audiomae.reset_positions()
    state, centroids = official_encoder_state(codec.encoder)
    ckpt = folder / checkpoint_folder(token_rate) / "encoder.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save(state, ckpt)
    npy = folder / centroid_file(token_rate, 8192)
    npy.parent.mkdir(parents=True)
    np.save(npy, centroids.numpy())
    return codec.eval(), ckpt, npy


def bench_encode(args) -> list[dict]:
    """Encode rows: ours batched / one by one, the reference one by one (if given)."""
    import torch

    torch.set_num_threads(args.threads)
    clips = test_clips(args.clips, args.seconds)
    audio_seconds = sum(len(c) for c in clips) / SR
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        codec, ckpt, npy = build_full_encoder(args.token_rate, Path(tmp))
        codec = codec.to(args.device)
        waves = [torch.from_numpy(c) for c in clips]
        ours = [codec.encode_codes(w) for w in waves]  # also the warm-up
        single = _best(lambda: [codec.encode_codes(w) for w in waves], args.repeats, args.device)
        batched = _best(lambda: codec.encode_codes(waves), args.repeats, args.device)
        for mode, secs in (("batched", batched), ("one by one", single)):
            rows.append(dict(impl="sonotok", step="encode", mode=mode, seconds=secs,
                             rtf=secs / audio_seconds))  # fmt: skip
        if args.reference_python:
            reference = run_reference(args, ckpt, npy, clips, Path(tmp))
            ours_all = np.concatenate([t.cpu().numpy() for t in ours])
            ref_all = np.concatenate(reference["tokens"])
            same = ours_all == ref_all if ours_all.shape == ref_all.shape else np.zeros(1, bool)
            rows.append(dict(impl="reference", step="encode", mode="one by one",
                             seconds=reference["seconds"], rtf=reference["seconds"] / audio_seconds,
                             tokens_equal=f"{100 * same.mean():.1f} %"))  # fmt: skip
    return rows


def run_reference(args, ckpt: Path, npy: Path, clips: list[np.ndarray], tmp: Path) -> dict:
    """Time the reference encoder in its own interpreter on the same weights and clips."""
    np.savez(tmp / "clips.npz", *clips)
    env = dict(os.environ, PYTHONPATH=args.reference_path)
    command = [args.reference_python, __file__, "--reference-worker", str(tmp),
               "--token-rate", str(args.token_rate), "--repeats", str(args.repeats),
               "--device", args.device, "--threads", str(args.threads)]  # fmt: skip
    subprocess.run(command, env=env, check=True)
    result = json.loads((tmp / "reference.json").read_text())
    tokens = np.load(tmp / "reference_tokens.npz")
    result["tokens"] = [tokens[f"arr_{i}"] for i in range(len(clips))]
    return result


def reference_worker(args) -> None:
    """Inside the reference environment: load encoder.ckpt into the reference encoder, time
    `SemantiCodec.encode`'s steps per clip, write tokens and the best time."""
    import torch

    torch.set_num_threads(args.threads)
    tmp = Path(args.reference_worker)
    source = next(
        Path(p) for p in os.environ["PYTHONPATH"].split(":") if (Path(p) / "semanticodec").is_dir()
    )
    pkg = types.ModuleType("semanticodec")
    pkg.__path__ = [str(source / "semanticodec")]  # skip __init__ (it imports the decoder)
    sys.modules["semanticodec"] = pkg
    import semanticodec.main as ref_main
    from semanticodec.config import get_config
    from semanticodec.modules.encoder.encoder import AudioMAEConditionQuantResEncoder

    _, folder, feature_dim, lstm_layers, _ = get_config(args.token_rate, 8192)
    npy = next(tmp.glob("codebook_idx/*/*.npy"))
    encoder = AudioMAEConditionQuantResEncoder(
        feature_dimension=feature_dim, lstm_layer=lstm_layers, centroid_npy_path=str(npy)
    )
    state = torch.load(tmp / folder / "encoder.ckpt", map_location="cpu", weights_only=True)
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    assert not unexpected and all("decoder" in k or "mask_token" in k or "_codebook." in k
                                  for k in missing), (missing, unexpected)  # fmt: skip
    encoder = encoder.to(args.device).eval()
    codec = object.__new__(ref_main.SemantiCodec)
    codec.stack_factor_K = 100 / args.token_rate
    clips = np.load(tmp / "clips.npz")
    clips = [torch.from_numpy(clips[f"arr_{i}"]) for i in range(len(clips.files))]

    def encode_all():
        out = []
        for wave in clips:
            ref_main.torchaudio.load = lambda path, w=wave: (w[None].clone(), SR)
            mel, target = codec.load_audio(__file__)
            with torch.no_grad():
                out.append(encoder(mel.to(args.device))[0, : math.ceil(target)].cpu().numpy())
        return out

    tokens = encode_all()
    seconds = _best(encode_all, args.repeats, args.device)
    np.savez(tmp / "reference_tokens.npz", *tokens)
    (tmp / "reference.json").write_text(json.dumps({"seconds": seconds}))


# ---- decode (the decoder side) ----------------------------------------------------------------
DECODE_SEED = 7


def bench_decode(args) -> list[dict]:
    """Decode rows: full-size latent diffusion decoder, random weights, random features of the
    clips' token lengths. With --reference-python the reference builds the official
    `LatentDiffusion`, fills it with seeded weights, writes decoder.ckpt (which ours then loads
    with `load_official_decoder`, strictly) and decodes every clip one at a time with the
    per-window noise `windows.decode_features` draws; the largest |ours - reference| is in the
    last column. Steps: SONOTOK_BENCH_DECODE_STEPS (default 50, the release's)."""
    import torch

    from sonotok.tokenizer.semanticodec.decoder import SemantiCodecDecoder, load_official_decoder
    from sonotok.tokenizer.semanticodec.decoder_config import DecoderConfig
    from sonotok.tokenizer.semanticodec.windows import decode_features

    torch.set_num_threads(args.threads)
    steps = int(os.environ.get("SONOTOK_BENCH_DECODE_STEPS", "50"))
    clips = test_clips(args.clips, args.seconds)
    frame_rate = (512 * args.token_rate / 100) / 10.24
    g = torch.Generator().manual_seed(0)
    width = DecoderConfig.for_token_rate(args.token_rate).feature_dim
    features = [torch.randn(int(len(c) / SR * frame_rate), width, generator=g) for c in clips]
    audio_seconds = sum(f.shape[0] / frame_rate for f in features)
    decoder = SemantiCodecDecoder(DecoderConfig.for_token_rate(args.token_rate)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        reference = None
        if args.reference_python:
            reference = run_reference_decode(args, features, steps, Path(tmp))
            load_official_decoder(Path(tmp) / "decoder.ckpt", decoder)
        decoder = decoder.to(args.device)

        def run(x, per_pass):
            return decode_features(decoder, x.to(args.device), args.token_rate, steps=steps,
                                   windows_per_pass=per_pass,
                                   generator=torch.Generator().manual_seed(DECODE_SEED))  # fmt: skip

        longest = max(f.shape[0] for f in features)
        padded = torch.stack(
            [torch.nn.functional.pad(f, (0, 0, 0, longest - f.shape[0])) for f in features]
        )
        batched = _best(lambda: run(padded, 8), args.repeats, args.device)
        ours = [run(f[None], 1)[0].cpu() for f in features]
        single = _best(lambda: [run(f[None], 1) for f in features], args.repeats, args.device)
        rows = [dict(impl="sonotok", step=f"decode {steps} steps", mode=m, seconds=s,
                     rtf=s / audio_seconds)
                for m, s in (("batched", batched), ("one by one", single))]  # fmt: skip
        if reference is not None:
            diff = max(float((a[: len(b)] - torch.from_numpy(b)[: len(a)]).abs().max())
                       for a, b in zip(ours, reference["audio"]))  # fmt: skip
            rows.append(dict(impl="reference", step=f"decode {steps} steps", mode="one by one",
                             seconds=reference["seconds"], rtf=reference["seconds"] / audio_seconds,
                             tokens_equal=f"max |Δaudio| {diff:.1e}"))  # fmt: skip
    return rows


def run_reference_decode(args, features, steps: int, tmp: Path) -> dict:
    """Time the reference decoder in its own interpreter; it also writes decoder.ckpt."""
    np.savez(tmp / "features.npz", *[f.numpy() for f in features])
    spec = dict(token_rate=args.token_rate, steps=steps, threads=args.threads, device=args.device,
                repeats=args.repeats, seed=DECODE_SEED)  # fmt: skip
    (tmp / "decode_spec.json").write_text(json.dumps(spec))
    env = dict(os.environ, PYTHONPATH=args.reference_path)
    code = "import runpy, sys; runpy.run_path(sys.argv[1])['reference_decode_worker'](sys.argv[2])"
    subprocess.run([args.reference_python, "-c", code, __file__, str(tmp)], env=env, check=True)
    result = json.loads((tmp / "reference_decode.json").read_text())
    audio = np.load(tmp / "reference_audio.npz")
    result["audio"] = [audio[f"arr_{i}"] for i in range(len(features))]
    return result


def _seeded_state(shapes: dict) -> dict:
    """Deterministic weights keyed on each name (as tests/fixtures/make_semanticodec_decoder_parity)."""
    import zlib

    import torch

    state = {}
    for key, shape in shapes.items():
        value = torch.randn(
            shape, generator=torch.Generator().manual_seed(zlib.crc32(key.encode()))
        )
        if len(shape) >= 2:
            value = value / math.prod(shape[1:]) ** 0.5
        elif "norm" in key and key.endswith("weight"):
            value = 1.0 + 0.1 * value
        else:
            value = 0.05 * value
        state[key] = value
    return state


def reference_decode_worker(folder: str) -> None:
    """Inside the reference environment: the official LatentDiffusion with seeded weights →
    decoder.ckpt; `SemantiCodec.decode` on each clip (windows' noise as ours); best time."""
    import torch
    from semanticodec import main as ref_main
    from semanticodec.config import get_config
    from semanticodec.modules.decoder.latent_diffusion.models import ddim
    from semanticodec.modules.decoder.latent_diffusion.util import instantiate_from_config
    from semanticodec.modules.encoder.encoder import AudioMAEConditionQuantResEncoder

    tmp = Path(folder)
    spec = json.loads((tmp / "decode_spec.json").read_text())
    torch.set_num_threads(spec["threads"])
    config = get_config(spec["token_rate"], 8192)[0]
    model = instantiate_from_config(config["model"])
    model.device = torch.device(spec["device"])
    skip = (
        "model_ema.",
        "betas",
        "alphas_cumprod",
        "sqrt_",
        "log_one_minus",
        "posterior_",
        "logvar",
    )
    state = _seeded_state(
        {k: list(v.shape) for k, v in model.state_dict().items() if not k.startswith(skip)}
    )
    state["scale_factor"] = torch.tensor(0.75)
    model.load_state_dict(state, strict=False)
    torch.save(model.state_dict(), tmp / "decoder.ckpt")
    model = model.to(spec["device"]).eval()
    features = np.load(tmp / "features.npz")
    features = [torch.from_numpy(features[f"arr_{i}"])[None] for i in range(len(features.files))]
    draws = 1 + len(range(0, 1000, 1000 // spec["steps"]))
    base = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(spec["seed"])))
    queue, count = [], [0]
    ddim.noise_like = lambda shape, device, repeat=False: queue.pop(0).to(device)
    generate = model.generate_sample

    def generate_window(feature, ddim_steps, unconditional_guidance_scale):
        gen = torch.Generator().manual_seed(base + count[0])
        noise = [torch.randn((1, *model_shape), generator=gen) for _ in range(draws)]
        count[0] += 1
        queue[:] = noise[1:]
        return generate(feature, ddim_steps=ddim_steps, x_T=noise[0].to(spec["device"]),
                        unconditional_guidance_scale=unconditional_guidance_scale)  # fmt: skip

    model_shape = (model.channels, model.latent_t_size, model.latent_f_size)

    class Encoder:
        long_token_split_window = AudioMAEConditionQuantResEncoder.long_token_split_window

        def token_to_quantized_feature(self, tokens):
            return tokens

    codec = types.SimpleNamespace(
        encoder=Encoder(),
        stack_factor_K=100 / spec["token_rate"],
        ddim_sample_step=spec["steps"],
        cfg_scale=2.0,
        decoder=types.SimpleNamespace(generate_sample=generate_window),
    )  # the attributes SemantiCodec.decode reads

    def decode_all():
        out = []
        for f in features:
            count[0] = 0
            out.append(np.asarray(ref_main.SemantiCodec.decode(codec, f.to(spec["device"])))[0, 0])
        return out

    audio = decode_all()
    seconds = _best(decode_all, spec["repeats"], spec["device"])
    np.savez(tmp / "reference_audio.npz", *audio)
    (tmp / "reference_decode.json").write_text(json.dumps({"seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0, help="mean clip length")
    parser.add_argument("--token-rate", type=int, default=100, choices=(25, 50, 100))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--reference-python", help="interpreter of the reference environment")
    parser.add_argument("--reference-path", default="", help="its PYTHONPATH (checkout, deps)")
    parser.add_argument("--reference-worker", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--only", choices=("encode", "decode"), help="run one half")
    args = parser.parse_args()
    if args.reference_worker:
        return reference_worker(args)
    rows = bench_encode(args) if args.only != "decode" else []
    decode = globals().get("bench_decode")  # the decoder side's rows, when present
    if decode is not None and args.only != "encode":
        rows += decode(args)
    total = args.clips * args.seconds
    print(f"SemantiCodec {args.token_rate} tokens/s, {args.clips} clips ≈ {total:.0f} s, "
          f"device {args.device}, {args.threads} threads")  # fmt: skip
    print("| impl | step | mode | seconds | RTF | tokens equal |\n|---|---|---|---|---|---|")
    for r in rows:
        equal = r.get("tokens_equal", "")
        print(
            f"| {r['impl']} | {r['step']} | {r['mode']} | {r['seconds']:.2f} | {r['rtf']:.3f} | {equal} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
