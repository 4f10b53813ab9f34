"""Model folders and hub ids: the one resolver and the one save/load mixin.

A sonotok model folder is `config.json` (the config dataclass's fields plus `model_type`) and
`model.safetensors`. `HubMixin` gives a model class `save_pretrained`, `from_pretrained` (a local
folder or a Hugging Face hub id, with the hub's usual `revision`, `cache_dir`, `token`,
`local_files_only`) and `push_to_hub`; loading builds the model on the meta device (no random
initialisation) and loads the weights strictly. Official checkpoints with other key names are
loaded by overriding `convert_state` with a documented key map.

Nothing is unpickled: weights are safetensors, or `.bin`/`.pt` read with `weights_only=True`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import dataclass_from_dict, read_json_object
from .errors import CheckpointError, ConfigError, ModelNotFoundError
from .io import atomic_write

__all__ = [
    "HubMixin",
    "hub_options",
    "is_hub_id",
    "load_strict",
    "read_weights",
    "resolve",
    "write_pretrained",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_HUB_OPTIONS = ("revision", "cache_dir", "token", "local_files_only")


def hub_options(kwargs: dict) -> dict:
    """The hub arguments (`revision`, `cache_dir`, `token`, `local_files_only`) in `kwargs`."""
    return {k: kwargs[k] for k in _HUB_OPTIONS if kwargs.get(k) is not None}


def is_hub_id(name: str) -> bool:
    """'owner/name' with no path-like prefix or file suffix."""
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name)) and not name.endswith(
        (".pt", ".bin", ".safetensors", ".json")
    )


def resolve(
    name_or_path: str | os.PathLike,
    *,
    allow_patterns: list[str] | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> Path:
    """A local file or folder as is; otherwise a hub id, downloaded or taken from the cache."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    name = str(name_or_path)
    if not is_hub_id(name):
        raise ModelNotFoundError(
            f"model {name!r}: no such file or folder; pass a folder written by save_pretrained, "
            "a downloaded checkpoint folder, or a Hugging Face Hub id like 'owner/name'"
        )
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                name,
                allow_patterns=allow_patterns,
                revision=revision,
                cache_dir=cache_dir,
                token=token,
                local_files_only=local_files_only,
            )
        )
    except Exception as err:  # offline, unknown repo, gated, ...: one message with the fix
        where = "in the local Hugging Face cache" if local_files_only else "on the Hugging Face Hub"
        raise ModelNotFoundError(
            f"model {name!r}: not a local folder, and not found {where} ({type(err).__name__}). "
            f"On a machine with internet run `hf download {name} --local-dir DIR`, copy DIR here "
            "and pass it instead (--model DIR, or from_pretrained('DIR'))"
        ) from None


def read_weights(folder: Path, name: str = WEIGHTS_NAME) -> dict[str, torch.Tensor]:
    """`name` (safetensors), else `pytorch_model.bin` read with weights_only=True."""
    st, pt = folder / name, folder / "pytorch_model.bin"
    if st.is_file():
        try:
            return load_file(str(st))
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(
                f"{st}: not a readable safetensors file ({err}); re-save or re-download the model"
            ) from None
    if pt.is_file():
        try:
            return torch.load(pt, map_location="cpu", weights_only=True)
        except Exception as err:  # a pickle with code in it is refused here, never run
            raise CheckpointError(
                f"{pt}: not a plain tensor file ({type(err).__name__}); sonotok only reads "
                "weights that need no code to load — convert it to model.safetensors"
            ) from None
    raise ModelNotFoundError(f"{folder}: no {name} (or pytorch_model.bin) next to {CONFIG_NAME}")


def load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load `state` into `model` with no missing or unexpected keys and no shape change.

    Keys naming one of the model's non-persistent buffers (derived tables such as mel filter
    banks and windows) are compared with the model's own values instead of loaded.
    """
    derived = dict(model.named_buffers())
    persistent = model.state_dict()
    state = dict(state)
    for key in [k for k in state if k in derived and k not in persistent]:
        stored, ours = state.pop(key), derived[key]
        if stored.shape != ours.shape or not torch.allclose(
            stored.float().cpu(), ours.float().cpu(), atol=1e-5
        ):
            raise CheckpointError(
                f"{source}: stored {key} {tuple(stored.shape)} differs from the one this "
                "configuration derives; the checkpoint was made with a different front end "
                "(sample rate, n_fft or mel bins)"
            )
    missing = sorted(set(persistent) - set(state))
    unexpected = sorted(set(state) - set(persistent))
    if missing or unexpected:
        more = lambda keys: "…" if len(keys) > 8 else ""  # noqa: E731
        raise CheckpointError(
            f"{source}: does not match the model: missing keys {missing[:8]}{more(missing)}, "
            f"unexpected keys {unexpected[:8]}{more(unexpected)}; check that the config "
            "(depth, widths) belongs to these weights"
        )
    wrong = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(persistent[k].shape)}"
        for k, v in state.items()
        if v.shape != persistent[k].shape
    ]
    if wrong:
        raise CheckpointError(f"{source}: tensor shapes do not match the config: {wrong[:4]}")
    model.load_state_dict(state, strict=True)


def write_pretrained(
    folder: str | os.PathLike, config: dict, state: dict[str, torch.Tensor]
) -> Path:
    """config.json + model.safetensors, each written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(tensors, str(tmp)))
    text = json.dumps(config, indent=2) + "\n"
    atomic_write(folder / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text))
    return folder


class HubMixin:
    """`save_pretrained` / `from_pretrained` / `push_to_hub` for an `nn.Module` whose
    constructor takes one config dataclass (`config_class`) stored as `self.config`."""

    config_class: ClassVar[type]
    model_type: ClassVar[str]

    # ---- hooks a model may override --------------------------------------------------------
    def config_dict(self) -> dict:
        return {"model_type": self.model_type, **dataclasses.asdict(self.config)}

    @classmethod
    def config_from_dict(cls, values: dict, where: str):
        values = dict(values)
        model_type = values.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ConfigError(
                f"{where}: model_type {model_type!r} is not a {cls.__name__} "
                f"({cls.model_type!r}); load it with the class made for it"
            )
        return dataclass_from_dict(cls.config_class, values, where)

    @classmethod
    def convert_state(cls, values: dict, state: dict[str, torch.Tensor]) -> dict:
        """Official key names → ours (identity for sonotok's own folders)."""
        return state

    # ---- the mixin ---------------------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """config.json + model.safetensors in `folder` (atomic writes)."""
        return write_pretrained(folder, self.config_dict(), self.state_dict())

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> Any:
        """Load strictly from a folder written by `save_pretrained` or a hub id."""
        folder = resolve(
            name_or_path,
            allow_patterns=[CONFIG_NAME, "*.safetensors", "*.json", "*.md"],
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
        )
        values = read_json_object(folder / CONFIG_NAME)
        config = cls.config_from_dict(values, str(folder / CONFIG_NAME))
        state = cls.convert_state(values, read_weights(folder))
        return cls.from_state_dict(config, state, str(name_or_path)).to(device or "cpu")

    @classmethod
    def from_state_dict(cls, config, state: dict[str, torch.Tensor], source: str) -> Any:
        """Build on the meta device (no random initialisation) and load `state` strictly."""
        with torch.device("meta"):
            model = cls(config)
        model.to_empty(device="cpu")
        reset = getattr(model, "reset_derived_buffers", None)
        if reset is not None:
            reset()
        load_strict(model, state, source)
        return model.eval()

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | bool | None = None,
        commit_message: str = "Upload with sonotok",
        model_card: str | None = None,
    ) -> str:
        """Save to a temporary folder (with a model card) and upload it to `repo_id`."""
        import tempfile

        from huggingface_hub import HfApi

        api = HfApi(token=token)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            card = model_card or (
                f"---\nlibrary_name: sonotok\ntags: [audio, sonotok, {self.model_type}]\n---\n\n"
                f"# {repo_id}\n\nA `{type(self).__name__}` saved with "
                f"[sonotok](https://pypi.org/project/sonotok/). Load it with\n\n"
                f"```python\nfrom {type(self).__module__} import {type(self).__name__}\n"
                f'model = {type(self).__name__}.from_pretrained("{repo_id}")\n```\n'
            )
            Path(tmp, "README.md").write_text(card)
            api.create_repo(repo_id, private=private, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id, folder_path=tmp, commit_message=commit_message
            )
        return str(getattr(info, "commit_url", info))
