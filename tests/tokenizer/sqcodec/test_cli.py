"""`sonotok reconstruct` and `sonotok encode` end to end on a reduced SQCodec folder."""

from __future__ import annotations

import math

import numpy as np
import soundfile as sf
import torch

from sonotok.cli import main
from sonotok.core.codes import load_encoded


def test_reconstruct_and_encode_run_on_an_sqcodec_folder(tiny6, tiny6_folder, tone, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    wave = tone(1500, 22050)  # another rate: resampled to 16 kHz and back
    sf.write(src / "a.wav", wave, 22050, subtype="FLOAT")
    model = str(tiny6_folder)
    assert main(["reconstruct", str(src), "-o", str(tmp_path / "r"), "--model", model]) == 0
    recon, rate = sf.read(tmp_path / "r" / "a.wav", dtype="float32")
    assert rate == 22050 and recon.shape == (1500,)
    expected = tiny6.reconstruct(wave, sample_rate=22050).numpy()
    assert np.abs(recon - expected).max() < 1e-3  # the wav's sample format
    assert main(["encode", str(src), "-o", str(tmp_path / "z"), "--model", model]) == 0
    (out,) = (tmp_path / "z").iterdir()
    file = load_encoded(out)  # a code file (discrete family) or a latent file
    frames = math.ceil(round(1500 * 16000 / 22050) / tiny6.hop_samples)
    stored = getattr(file, "codes", getattr(file, "latents", None))
    assert stored.shape[0] == frames and file.frame_rate == tiny6.frame_rate
    if hasattr(file, "codes"):
        assert torch.equal(stored.long(), tiny6.encode_codes(wave, sample_rate=22050))
        assert file.codebook_size == 117649
    assert main(["decode", str(tmp_path / "z"), "-o", str(tmp_path / "d"), "--model", model]) == 0
    decoded, rate = sf.read(tmp_path / "d" / "a.wav", dtype="float32")
    assert rate == 22050 and np.abs(decoded - recon).max() < 1e-3  # codes decode as reconstruct
