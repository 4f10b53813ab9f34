"""scripts/mini/prepare_data.py: the folders the sonotok-mini recipe trains and evaluates on."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
from datasets import load_from_disk

from sonotok.enhancement.mixing import snr
from sonotok.tokenizer import load_audio

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mini" / "prepare_data.py"


def test_prepare_data_exports_splits_and_exact_snr_test_mixtures(corpus_dir, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("prepare_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "data"
    monkeypatch.setattr(sys, "argv", ["prepare_data.py", str(corpus_dir), str(out)])
    module.main()

    clips = load_from_disk(str(corpus_dir / "clips"))
    for split in ("train", "validation"):
        speech = [r for r in clips[split].remove_columns("audio") if r["domain"] == "speech"]
        assert sorted(p.stem for p in (out / f"speech_{split}").glob("*.wav")) == sorted(
            r["id"] for r in speech
        )
        assert len(list((out / f"noise_{split}").glob("*.wav"))) == len(
            load_from_disk(str(corpus_dir / "noise"))[split]
        )
    test_ids = sorted(
        r["id"] for r in clips["test"].remove_columns("audio") if r["domain"] == "speech"
    )
    test = out / "enhance_test"
    assert test_ids and sorted(p.stem for p in (test / "clean").glob("*.wav")) == test_ids
    for value in (0, 5):
        for clip_id in test_ids:
            clean = load_audio(test / "clean" / f"{clip_id}.wav").numpy()
            noisy = load_audio(test / f"noisy_{value}dB" / f"{clip_id}.wav").numpy()
            assert np.isclose(snr(clean, noisy), value, atol=0.05)  # 16-bit files
