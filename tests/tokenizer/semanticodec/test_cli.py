"""`sonotok encode` on a tiny SemantiCodec: code files with the family's facts."""

import numpy as np
import soundfile as sf
import torch

from sonotok.cli import main
from sonotok.core.codes import CodeFile
from sonotok.tokenizer.interface import load_tokenizer


def test_encode_folder_writes_code_files(make_codec, tmp_path):
    make_codec(50).save_pretrained(tmp_path / "model")
    clips = tmp_path / "clips"
    clips.mkdir()
    g = np.random.default_rng(0)
    for i, n in enumerate((5000, 12000)):
        wave = (0.1 * g.standard_normal(n)).astype(np.float32)
        sf.write(clips / f"{i}.wav", np.stack([wave, -wave], 1), 16000, subtype="FLOAT")
    argv = ["encode", str(clips), "-o", str(tmp_path / "codes"), "--model", str(tmp_path / "model")]
    assert main(argv) == 0
    model = load_tokenizer(tmp_path / "model")
    for i, n in enumerate((5000, 12000)):
        file = CodeFile.load(tmp_path / "codes" / f"{i}.safetensors")
        stereo = sf.read(clips / f"{i}.wav", dtype="float32")[0]
        expected = model.encode_codes(torch.from_numpy(stereo.mean(1)))
        assert torch.equal(file.codes.long(), expected)
        assert file.codes.shape == (model.num_latent_frames(n), 2)
        assert (file.model_type, file.num_codebooks, file.frame_rate) == ("semanticodec", 2, 25.0)
        assert file.bitrate == model.bitrate == 25.0 * (5 + 5)  # vocabulary 32, 32 acoustic codes
        assert file.num_samples == n
