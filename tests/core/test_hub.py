"""sonotok.core.hub: the one resolver, the save/load mixin, strict loading and push_to_hub.

Nothing here touches the network: `huggingface_hub.snapshot_download` and `HfApi` are replaced
by fakes that record what they were asked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
import torch
from huggingface_hub.errors import LocalEntryNotFoundError
from safetensors.torch import load_file, save_file
from torch import nn

from sonotok.core.errors import CheckpointError, ConfigError, ModelNotFoundError
from sonotok.core.hub import (
    HubMixin,
    init_derived_buffers,
    read_weights,
    resolve,
)
from sonotok.enhancement import (
    DashengDenoiser,
    DenoiserConfig,
    EnhancementPipeline,
    LatentDenoiser,
    TokenizerDenoiser,
)
from sonotok.tokenizer import AudioTokenizer, SemanticEncoder

OFFICIAL_DENOISER = Path(__file__).resolve().parents[1] / "fixtures/denoiser_parity/official_tiny"
HUB = dict(
    revision="v1.0", cache_dir="/tmp/sonotok-test-cache", token="hf_test", local_files_only=True
)


# ---- a toy model on the mixin --------------------------------------------------------------
@dataclass
class ToyConfig:
    width: int = 4
    table_size: int = 6


class Table(nn.Module):
    """A derived (non-persistent) buffer, as mel filter banks are."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.register_buffer("values", torch.empty(size), persistent=False)
        self.init_derived_buffers()

    def init_derived_buffers(self) -> None:
        if not self.values.is_meta:
            self.values = torch.arange(self.size, dtype=torch.float32) / 2


class Toy(HubMixin, nn.Module):
    config_class = ToyConfig
    model_type = "toy"

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.lin = nn.Linear(config.width, config.width)
        self.table = Table(config.table_size)


@pytest.fixture()
def toy_dir(tmp_path) -> Path:
    torch.manual_seed(0)
    Toy(ToyConfig()).save_pretrained(tmp_path / "toy")
    return tmp_path / "toy"


# ---- a fake hub ----------------------------------------------------------------------------
@pytest.fixture()
def fake_hub(monkeypatch):
    """snapshot_download serving `repos` (id → local folder) and recording every call."""
    hub = SimpleNamespace(calls=[], repos={})

    def snapshot_download(repo_id, **kwargs):
        hub.calls.append((repo_id, kwargs))
        if repo_id not in hub.repos:
            raise LocalEntryNotFoundError(f"{repo_id} is not in the cache")
        return str(hub.repos[repo_id])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return hub


class FakeApi:
    """Records create_repo and the files of each uploaded folder (read during the upload)."""

    last: FakeApi | None = None

    def __init__(self, token=None):
        self.token, self.created, self.uploads = token, [], []
        FakeApi.last = self

    def create_repo(self, repo_id, private=None, exist_ok=False):
        self.created.append((repo_id, private, exist_ok))

    def upload_folder(self, *, repo_id, folder_path, commit_message, create_pr=False):
        root = Path(folder_path)
        files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
        self.uploads.append(dict(repo_id=repo_id, files=files, message=commit_message))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/0123")


def _unpack(files: dict[str, bytes], folder: Path) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


# ---- the resolver --------------------------------------------------------------------------
def test_resolve_returns_local_files_and_folders_as_they_are(toy_dir, fake_hub):
    assert resolve(toy_dir) == toy_dir
    assert resolve(str(toy_dir / "config.json")) == toy_dir / "config.json"
    assert fake_hub.calls == []


def test_resolve_passes_the_hub_options_to_snapshot_download(toy_dir, fake_hub):
    fake_hub.repos["owner/toy"] = toy_dir
    assert resolve("owner/toy", allow_patterns=["*.json"], **HUB) == toy_dir
    assert fake_hub.calls == [("owner/toy", {"allow_patterns": ["*.json"], **HUB})]


def test_resolve_offline_names_the_hf_download_command(fake_hub):
    with pytest.raises(ModelNotFoundError) as err:
        resolve("owner/missing", revision="v2", local_files_only=True)
    message = str(err.value)
    assert "not found in the local Hugging Face cache (LocalEntryNotFoundError)" in message
    assert "`hf download owner/missing --revision v2 --local-dir DIR`" in message


def test_resolve_unknown_repository_suggests_a_token(monkeypatch):
    from huggingface_hub.errors import RepositoryNotFoundError

    def snapshot_download(repo_id, **kwargs):  # built bare: its HTTP response is not needed
        raise RepositoryNotFoundError.__new__(RepositoryNotFoundError)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    with pytest.raises(ModelNotFoundError, match="private or gated repository pass token="):
        resolve("owner/private")


def test_resolve_neither_a_path_nor_a_hub_id(tmp_path, fake_hub):
    with pytest.raises(ModelNotFoundError, match="no such file or folder"):
        resolve(tmp_path / "nope" / "deeper")
    with pytest.raises(ModelNotFoundError, match="no such file or folder"):
        resolve("weights.safetensors")
    assert fake_hub.calls == []


# ---- the mixin -----------------------------------------------------------------------------
def test_mixin_round_trip(toy_dir):
    assert sorted(p.name for p in toy_dir.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((toy_dir / "config.json").read_text()) == {
        "model_type": "toy",
        "width": 4,
        "table_size": 6,
    }
    torch.manual_seed(0)
    original = Toy(ToyConfig())
    loaded = Toy.from_pretrained(toy_dir)
    assert loaded.config == ToyConfig() and not loaded.training
    for key, value in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    torch.testing.assert_close(loaded.table.values, torch.tensor([0, 0.5, 1, 1.5, 2, 2.5]))


def test_mixin_builds_on_the_meta_device_without_random_init(toy_dir, monkeypatch):
    """Loading never initialises weights for real: the constructor runs on the meta device."""
    devices = []
    real_init = nn.Linear.reset_parameters

    def record(self):
        devices.append(self.weight.device.type)
        real_init(self)

    monkeypatch.setattr(nn.Linear, "reset_parameters", record)
    Toy.from_pretrained(toy_dir)
    assert devices == ["meta"]


def _rewrite_weights(folder: Path, edit) -> None:
    state = load_file(str(folder / "model.safetensors"))
    save_file(edit(state), str(folder / "model.safetensors"))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda s: {k: v for k, v in s.items() if k != "lin.bias"}, r"missing keys \['lin.bias'\]"),
        (lambda s: {**s, "head.weight": torch.zeros(2)}, r"unexpected keys \['head.weight'\]"),
        (lambda s: {**s, "lin.weight": torch.zeros(3, 4)}, r"lin.weight: file \(3, 4\) vs model"),
        (
            lambda s: {**s, "table.values": torch.zeros(6)},
            "stored table.values .* differs from the one this configuration derives",
        ),
    ],
)
def test_strict_load_errors(toy_dir, edit, message):
    _rewrite_weights(toy_dir, edit)
    with pytest.raises(CheckpointError, match=message):
        Toy.from_pretrained(toy_dir)


def test_a_stored_derived_buffer_equal_to_ours_is_accepted(toy_dir):
    _rewrite_weights(toy_dir, lambda s: {**s, "table.values": torch.arange(6) / 2})
    assert torch.equal(Toy.from_pretrained(toy_dir).table.values, torch.arange(6) / 2)


@pytest.mark.parametrize(
    "config, error, message",
    [
        ({"model_type": "bert", "width": 4}, ConfigError, "model_type 'bert' is not a Toy"),
        ({"model_type": "toy", "colour": 1}, ConfigError, "unknown config key colour"),
        ({"model_type": "toy", "width": "four"}, ConfigError, "width: expected an integer"),
    ],
)
def test_config_errors_name_the_file(toy_dir, config, error, message):
    (toy_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(error, match=message) as err:
        Toy.from_pretrained(toy_dir)
    assert str(toy_dir / "config.json") in str(err.value)


def test_torch_bin_weights_must_be_a_plain_dict_of_tensors(toy_dir, plant_pickles):
    state = load_file(str(toy_dir / "model.safetensors"))
    (toy_dir / "model.safetensors").unlink()
    torch.save(state, toy_dir / "pytorch_model.bin")
    assert torch.equal(read_weights(toy_dir)["lin.weight"], state["lin.weight"])
    torch.save([state["lin.weight"]], toy_dir / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="expected a dict of tensors"):
        Toy.from_pretrained(toy_dir)
    marker = plant_pickles(toy_dir)
    with pytest.raises(CheckpointError, match="pytorch_model.bin: refused to load"):
        Toy.from_pretrained(toy_dir)
    assert not marker.exists()


def test_derived_buffers_without_a_rule_are_refused():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("cache", torch.zeros(3), persistent=False)

    with pytest.raises(TypeError, match=r"\['cache'\] without init_derived_buffers"):
        init_derived_buffers(nn.Sequential(Bad()))


# ---- every loader takes the hub options ----------------------------------------------------
@pytest.fixture(scope="module")
def enhancement_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny enhancement folder naming its tokenizer by the hub id 'owner/tokenizer'."""
    torch.manual_seed(2)
    folder = tmp_path_factory.mktemp("enh")
    pipe = EnhancementPipeline(
        TokenizerDenoiser(tiny_tokenizer, LatentDenoiser(DenoiserConfig.tiny(32)))
    )
    pipe.save_pretrained(folder, tokenizer_reference="owner/tokenizer")
    return folder


def test_every_loader_passes_the_hub_options(
    fake_hub, tiny_tokenizer, tiny_tokenizer_dir, enhancement_dir, tmp_path
):
    tiny_tokenizer.semantic.save_pretrained(tmp_path / "semantic")
    fake_hub.repos.update(
        {
            "owner/tokenizer": tiny_tokenizer_dir,
            "owner/semantic": tmp_path / "semantic",
            "owner/enhancement": enhancement_dir,
            "owner/official-denoiser": OFFICIAL_DENOISER,
        }
    )
    loaders = [
        (AudioTokenizer, "owner/tokenizer"),
        (SemanticEncoder, "owner/semantic"),
        (LatentDenoiser, "owner/enhancement"),
        (DashengDenoiser, "owner/official-denoiser"),
    ]
    for cls, repo in loaders:
        fake_hub.calls.clear()
        assert isinstance(cls.from_pretrained(repo, **HUB), cls)
        ((asked, kwargs),) = fake_hub.calls
        assert asked == repo and {k: kwargs[k] for k in HUB} == HUB, cls
        assert kwargs["allow_patterns"] == cls.hub_files

    fake_hub.calls.clear()
    pipe = EnhancementPipeline.from_pretrained("owner/enhancement", **HUB)
    assert isinstance(pipe.model, TokenizerDenoiser)
    (pipeline_repo, first), *tokenizer_calls = fake_hub.calls
    assert pipeline_repo == "owner/enhancement" and "tokenizer/*" in first["allow_patterns"]
    assert {k: first[k] for k in HUB} == HUB
    # load_tokenizer reads the tokenizer's config.json alone first (to pick its family), then
    # the family loads it; the pipeline's revision does not apply to that repository, the rest does
    assert [repo for repo, _ in tokenizer_calls] == ["owner/tokenizer"] * len(tokenizer_calls)
    assert tokenizer_calls[0][1]["allow_patterns"] == ["config.json"]
    for _, second in tokenizer_calls:
        assert {k: second.get(k) for k in HUB} == {**HUB, "revision": None}


def test_a_hub_loader_offline_names_hf_download(fake_hub):
    for cls in (AudioTokenizer, SemanticEncoder, LatentDenoiser, DashengDenoiser):
        with pytest.raises(ModelNotFoundError, match="`hf download owner/none --local-dir DIR`"):
            cls.from_pretrained("owner/none")
    with pytest.raises(ModelNotFoundError, match="`hf download owner/none --local-dir DIR`"):
        EnhancementPipeline.from_pretrained("owner/none")


# ---- push_to_hub ---------------------------------------------------------------------------
def _push(obj, monkeypatch, repo_id: str = "me/model", **kwargs):
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    url = obj.push_to_hub(repo_id, token="hf_secret", private=True, **kwargs)
    api = FakeApi.last
    assert url == f"https://huggingface.co/{repo_id}/commit/0123"
    assert api.token == "hf_secret" and api.created == [(repo_id, True, True)]
    (upload,) = api.uploads
    assert upload["repo_id"] == repo_id
    return upload["files"]


def _card(files: dict[str, bytes]) -> str:
    card = files["README.md"].decode()
    assert card.startswith("---\nlibrary_name: sonotok\n")
    return card


def test_push_to_hub_uploads_a_loadable_folder_with_a_model_card(monkeypatch, tmp_path):
    torch.manual_seed(3)
    model = Toy(ToyConfig())
    files = _push(model, monkeypatch, "me/toy")
    assert sorted(files) == ["README.md", "config.json", "model.safetensors"]
    card = _card(files)
    assert "tags: [audio, sonotok, toy]" in card
    assert f"from {__name__} import Toy" in card and 'Toy.from_pretrained("me/toy")' in card
    loaded = Toy.from_pretrained(_unpack(files, tmp_path))
    assert torch.equal(loaded.lin.weight, model.lin.weight)


def test_push_to_hub_takes_a_given_model_card_and_message(monkeypatch):
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    card = "---\nlibrary_name: sonotok\nlicense: mit\n---\n# mine\n"
    Toy(ToyConfig()).push_to_hub("me/toy", model_card=card, commit_message="v2")
    (upload,) = FakeApi.last.uploads
    assert upload["files"]["README.md"].decode() == card and upload["message"] == "v2"


def test_tokenizer_push_to_hub(monkeypatch, tmp_path, tiny_tokenizer, tone):
    files = _push(tiny_tokenizer, monkeypatch, "me/tokenizer")
    assert sorted(files) == ["README.md", "config.json", "model.safetensors"]
    assert 'AudioTokenizer.from_pretrained("me/tokenizer")' in _card(files)
    loaded = AudioTokenizer.from_pretrained(_unpack(files, tmp_path))
    x = torch.from_numpy(tone(8000))
    assert torch.equal(loaded.encode(x), tiny_tokenizer.encode(x))


def test_enhancement_pipeline_push_to_hub_is_self_contained(monkeypatch, tmp_path, tiny_tokenizer):
    torch.manual_seed(4)
    pipe = EnhancementPipeline(
        TokenizerDenoiser(tiny_tokenizer, LatentDenoiser(DenoiserConfig.tiny(32)))
    )
    files = _push(pipe, monkeypatch, "me/enhancer")
    assert sorted(files) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer/config.json",
        "tokenizer/model.safetensors",
    ]
    card = _card(files)
    assert "speech-enhancement" in card and "--model me/enhancer" in card
    loaded = EnhancementPipeline.from_pretrained(_unpack(files, tmp_path))
    torch.testing.assert_close(
        loaded.model.denoiser.state_dict(), pipe.model.denoiser.state_dict(), rtol=0, atol=0
    )


def test_official_denoiser_push_to_hub_keeps_the_official_layout(monkeypatch, tmp_path):
    pipe = EnhancementPipeline.from_pretrained(OFFICIAL_DENOISER)
    files = _push(pipe, monkeypatch, "me/denoiser")
    assert sorted(files) == ["README.md", "config.yaml", "model.safetensors"]
    assert "dasheng-denoiser" in _card(files)
    loaded = DashengDenoiser.from_pretrained(_unpack(files, tmp_path))
    for key, value in pipe.model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
