"""`sonotok encode | decode | reconstruct` on a tiny UniCodec folder: code files carry the
domain chosen automatically, and decode back to the model's audio."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import torch

from sonotok.cli import main
from sonotok.core.audio import restore_rate_and_length
from sonotok.core.codes import CodeFile
from sonotok.corpus import CorpusSpec, make_clip
from sonotok.tokenizer.interface import load_tokenizer

PCM16 = 2 / 2**15


def test_encode_decode_reconstruct_end_to_end(tiny_folder, tmp_path):
    wave = make_clip(CorpusSpec(seconds=2.0, seed=5), "speech", 60_000).wave[:24000]
    src = tmp_path / "in" / "talk.wav"
    src.parent.mkdir()
    sf.write(src, wave, 16000, subtype="FLOAT")
    model = str(tiny_folder)
    assert main(["encode", str(src), "-o", str(tmp_path / "c"), "--model", model]) == 0
    file = CodeFile.load(tmp_path / "c" / "talk.safetensors")
    tok = load_tokenizer(model)
    codes = tok.encode_codes(torch.from_numpy(wave), sample_rate=16000)
    assert torch.equal(file.codes, codes) and file.codes.shape == (tok.num_latent_frames(36000), 1)
    domain = tok.code_metadata(codes)["domain"]
    assert file.decode_options == {"domain": domain} == {"domain": "speech"}
    assert (file.codebook_size, file.frame_rate) == (256, 300.0)

    assert main(["decode", str(tmp_path / "c"), "-o", str(tmp_path / "d"), "--model", model]) == 0
    decoded, rate = sf.read(tmp_path / "d" / "talk.wav", dtype="float32")
    assert rate == 16000 and decoded.shape == wave.shape  # the source's rate and length
    expected = restore_rate_and_length(tok.decode(codes), 24000, 16000, wave.size)
    assert np.abs(decoded - expected.numpy()).max() < PCM16

    assert main(["reconstruct", str(src), "-o", str(tmp_path / "r"), "--model", model]) == 0
    recon, rate = sf.read(tmp_path / "r" / "talk.wav", dtype="float32")
    assert rate == 16000 and recon.shape == wave.shape
