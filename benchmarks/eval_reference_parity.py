"""Check sonotok's VGGish and PANNs CNN14 ports against the reference packages (run by hand).

The reference packages pull in old dependencies, so install them into a scratch folder
instead of the project's environment, then point this script at it:

    .venv/bin/pip install --target /tmp/refpkgs --no-deps torchvggish resampy torchlibrosa panns-inference
    .venv/bin/python benchmarks/eval_reference_parity.py --reference-packages /tmp/refpkgs

Both models get the same random weights (no download): the parameter names must match exactly
(strict loading) and the outputs must agree. Also compares the VGGish log-mel front end with
``torchvggish.vggish_input.waveform_to_examples``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch


def check_panns() -> None:
    from panns_inference.models import Cnn14 as Reference

    from sonotok.evaluation.panns import VARIANTS, Cnn14

    for variant, cfg in VARIANTS.items():
        torch.manual_seed(0)
        ref = Reference(
            sample_rate=cfg.sample_rate, window_size=cfg.window_size, hop_size=cfg.hop_size,
            mel_bins=cfg.mel_bins, fmin=cfg.fmin, fmax=cfg.fmax, classes_num=527,
        ).eval()  # fmt: skip
        for module in ref.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
        ours = Cnn14(cfg).eval()
        ours.load_state_dict(ref.state_dict(), strict=True)
        x = torch.randn(2, 2 * cfg.sample_rate) * 0.1
        with torch.no_grad():
            expected = ref(x)
            embedding, logits = ours(x)
        emb_err = float((expected["embedding"] - embedding).abs().max())
        clip_err = float((expected["clipwise_output"] - torch.sigmoid(logits)).abs().max())
        print(
            f"CNN14 {variant}: strict load ok; max |Δ| embedding {emb_err:.2e}, clipwise {clip_err:.2e}"
        )


def check_vggish() -> None:
    from torchvggish import torchvggish, vggish_input

    from sonotok.evaluation.vggish import VGGish, vggish_examples

    torch.manual_seed(0)
    ref = torchvggish.VGG(torchvggish.make_layers(), postprocess=False).eval()
    ours = VGGish().eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    wave = (np.random.default_rng(0).standard_normal(16000 * 3) * 0.1).astype(np.float64)
    expected_examples = (
        vggish_input.waveform_to_examples(wave, 16000, return_tensor=True).float().detach()
    )
    examples = vggish_examples(torch.from_numpy(wave).float())
    front_err = float((expected_examples - examples).abs().max())
    with torch.no_grad():
        # the reference ends with a ReLU; FAD takes the layer before it
        expected = ref.embeddings[:-1](ref.features(examples).permute(0, 2, 3, 1).flatten(1))
        got = ours(examples)
        reference_forward = ref(examples)
    print(
        f"VGGish: strict load ok; max |Δ| log-mel examples {front_err:.2e}, "
        f"embedding {float((expected - got).abs().max()):.2e}, "
        f"after ReLU {float((reference_forward - got.relu()).abs().max()):.2e}"
    )


REFERENCE_MODULES = ("panns_inference", "torchvggish", "torchlibrosa", "resampy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--reference-packages",
        metavar="DIR",
        help="folder the reference packages were installed into with pip --target "
        "(default: they must already be importable)",
    )
    args = parser.parse_args(argv)
    if args.reference_packages is not None:
        if not Path(args.reference_packages).is_dir():
            parser.error(f"--reference-packages {args.reference_packages}: no such folder")
        sys.path.insert(0, args.reference_packages)
    missing = [m for m in REFERENCE_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"error: reference packages not importable: {', '.join(missing)}; install them with "
            "`pip install --target DIR --no-deps torchvggish resampy torchlibrosa "
            "panns-inference` and pass --reference-packages DIR",
            file=sys.stderr,
        )
        return 2
    check_panns()
    check_vggish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
