"""Model folders and hub ids: the one resolver and the one save/load mixin.

A sonotok model folder is `config.json` (the config dataclass's fields plus `model_type`) and
`model.safetensors`. `HubMixin` gives a model class `save_pretrained`, `from_pretrained` (a local
folder or a Hugging Face hub id, with the hub's usual `revision`, `cache_dir`, `token`,
`local_files_only`) and `push_to_hub` (with a model card); loading builds the model on the meta
device (no random initialisation) and loads the weights strictly. Official checkpoints with other
key names or config layouts load by overriding `config_from_dict` / `convert_state` (a documented
key map) or, for another file layout, `load_path`. Objects that are not one module (pipelines)
get `push_to_hub` from `PushToHubMixin` around their own `save_pretrained`.

Nothing is unpickled: weights are safetensors, or `.bin`/`.pt` read with `weights_only=True`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import dataclass_from_dict, read_json_object
from .errors import CheckpointError, ConfigError, ModelNotFoundError
from .io import atomic_write

__all__ = [
    "CONFIG_NAME",
    "TORCH_WEIGHTS_NAME",
    "WEIGHTS_NAME",
    "HubMixin",
    "PushToHubMixin",
    "cached",
    "init_derived_buffers",
    "is_hub_id",
    "load_strict",
    "model_card",
    "read_config",
    "read_safetensors",
    "read_torch_weights",
    "read_weights",
    "rename_keys",
    "resolve",
    "write_pretrained",
    "write_weights",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TORCH_WEIGHTS_NAME = "pytorch_model.bin"


# ---- finding a model ---------------------------------------------------------------------------
def is_hub_id(name: str) -> bool:
    """'owner/name' with no path-like prefix or file suffix."""
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name)) and not name.endswith(
        (".pt", ".bin", ".safetensors", ".json")
    )


def _hub_hint(err: Exception, name: str, revision: str | None) -> str:
    """What to do about a failed download, by the kind of failure."""
    from huggingface_hub import errors

    if isinstance(err, errors.RevisionNotFoundError):
        return (
            f"revision {revision!r} does not exist in {name}; pass a branch, tag or commit it has"
        )
    if isinstance(err, errors.RepositoryNotFoundError):  # GatedRepoError is one of these
        return (
            "check the id; for a private or gated repository pass token=... "
            "(or run `hf auth login`)"
        )
    rev = f" --revision {revision}" if revision else ""
    return (
        f"on a machine with internet run `hf download {name}{rev} --local-dir DIR`, copy DIR here "
        "and pass it instead (--model DIR, or from_pretrained('DIR'))"
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
    """A local file or folder as is; otherwise a hub id, downloaded or taken from the cache.

    Only the files matching `allow_patterns` are fetched. Any failure (offline, unknown repo,
    gated, bad revision) is one ModelNotFoundError saying what to do.
    """
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
            f"model {name!r}: not a local folder, and not found {where} "
            f"({type(err).__name__}); {_hub_hint(err, name, revision)}"
        ) from None


def cached(
    repo_id: str, *, revision: str | None = None, cache_dir: str | os.PathLike | None = None
) -> Path | None:
    """The repo's folder in the local Hugging Face cache, or None; never downloads."""
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                repo_id, revision=revision, cache_dir=cache_dir, local_files_only=True
            )
        )
    except Exception:  # not cached, partial, or no huggingface_hub cache at all
        return None


# ---- reading and writing -----------------------------------------------------------------------
def read_config(folder: Path) -> dict:
    """config.json as a dict; a file that is not a JSON object is a ConfigError naming it."""
    file = Path(folder) / CONFIG_NAME
    if not file.is_file():
        raise ModelNotFoundError(f"{folder}: no {CONFIG_NAME}; this is not a model folder")
    return read_json_object(file)


def read_safetensors(file: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors file; an empty, truncated or foreign file is a
    CheckpointError naming it (safetensors parses a header only: nothing is executed)."""
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(
            f"{file}: not a readable safetensors file ({str(err).splitlines()[0]}); it is empty, "
            "truncated or not a model's weights — re-save or re-download it"
        ) from None


def read_torch_weights(file: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict saved with torch.save, read with weights_only=True: a pickle that would
    build any other object (or run code) is refused with a CheckpointError, never executed."""
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, EOFError, RuntimeError, ...: one message
        raise CheckpointError(
            f"{file}: refused to load ({type(err).__name__}): not a plain tensor checkpoint — "
            "sonotok never unpickles objects or code; convert the weights to model.safetensors"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{file}: expected a dict of tensors (a state_dict), got {type(state).__name__}"
        )
    return state


def read_weights(folder: Path, name: str = WEIGHTS_NAME) -> dict[str, torch.Tensor]:
    """`name` (safetensors), else `pytorch_model.bin` read with weights_only=True."""
    st, pt = Path(folder) / name, Path(folder) / TORCH_WEIGHTS_NAME
    if st.is_file():
        return read_safetensors(st)
    if pt.is_file():
        return read_torch_weights(pt)
    raise ModelNotFoundError(f"{folder}: no {name} (or {TORCH_WEIGHTS_NAME}) next to {CONFIG_NAME}")


def rename_keys(
    state: dict[str, torch.Tensor], rules: list[tuple[str, str]]
) -> dict[str, torch.Tensor]:
    """Apply the first matching (pattern, replacement) rule of an official key map to each key."""
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            if re.search(pattern, key):
                key = re.sub(pattern, repl, key)
                break
        out[key] = value
    return out


def _listed(keys: list[str]) -> str:
    return f"{keys[:8]}{'…' if len(keys) > 8 else ''}"


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
        raise CheckpointError(
            f"{source}: does not match the model: missing keys {_listed(missing)}, "
            f"unexpected keys {_listed(unexpected)}; check that the config "
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


def write_weights(
    folder: str | os.PathLike, state: dict[str, torch.Tensor], name: str = WEIGHTS_NAME
) -> Path:
    """`folder`/model.safetensors (made as needed), written atomically; returns `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    atomic_write(folder / name, lambda tmp: save_file(tensors, str(tmp)))
    return folder


def write_pretrained(
    folder: str | os.PathLike, config: dict, state: dict[str, torch.Tensor]
) -> Path:
    """config.json + model.safetensors, each written atomically."""
    folder = write_weights(folder, state)
    text = json.dumps(config, indent=2) + "\n"
    atomic_write(folder / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text))
    return folder


def init_derived_buffers(model: torch.nn.Module) -> None:
    """Recompute every non-persistent buffer (built on the meta device, then `to_empty`).

    A module holding such a buffer must say how to compute it (`init_derived_buffers`);
    otherwise the buffer would keep uninitialised memory, so that is refused.
    """
    for name, module in model.named_modules():
        own = [b for b in module._non_persistent_buffers_set if module._buffers.get(b) is not None]
        if hasattr(module, "init_derived_buffers"):
            module.init_derived_buffers()
        elif own:
            raise TypeError(
                f"{type(model).__name__}.{name or '(root)'}: non-persistent buffers {sorted(own)} "
                "without init_derived_buffers(); HubMixin cannot rebuild them after meta-device init"
            )


# ---- the model card and the upload -------------------------------------------------------------
def model_card(repo_id: str, cls: type, tags: list[str], body: str = "") -> str:
    """A Hugging Face model card (README.md) for a sonotok object of class `cls`."""
    tag_list = ", ".join(dict.fromkeys(["audio", "sonotok", *tags]))
    return (
        f"---\nlibrary_name: sonotok\ntags: [{tag_list}]\n---\n\n"
        f"# {repo_id}\n\nA `{cls.__name__}` saved with "
        "[sonotok](https://pypi.org/project/sonotok/). Load it with\n\n"
        f"```python\nfrom {cls.__module__} import {cls.__name__}\n\n"
        f'model = {cls.__name__}.from_pretrained("{repo_id}")\n```\n'
        f"{body}"
    )


class PushToHubMixin:
    """`push_to_hub` for anything with `save_pretrained(folder)`: save into a temporary folder,
    add a model card (README.md) and upload the folder as one commit."""

    def model_card(self, repo_id: str) -> str:
        """The README.md uploaded with the model; override to describe it better."""
        return model_card(repo_id, type(self), [getattr(self, "model_type", type(self).__name__)])

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        token: str | bool | None = None,
        commit_message: str = "Upload with sonotok",
        model_card: str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Create `repo_id` if needed and upload `save_pretrained`'s folder plus a model card;
        returns the commit URL."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            card = model_card if model_card is not None else self.model_card(repo_id)
            Path(tmp, "README.md").write_text(card)
            api.create_repo(repo_id, private=private, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=tmp,
                commit_message=commit_message,
                create_pr=create_pr,
            )
        return str(getattr(info, "commit_url", info))


# ---- the save/load mixin -----------------------------------------------------------------------
class HubMixin(PushToHubMixin):
    """`save_pretrained` / `from_pretrained` / `push_to_hub` for an `nn.Module` whose
    constructor takes one config dataclass (`config_class`) stored as `self.config`.

    Hooks: `config_dict` / `config_from_dict` (the config.json layout, incl. official ones),
    `convert_state` (official key names → ours), `build` (a constructor taking other than one
    config), `load_path` (another file layout, e.g. a single `.pt`), `hub_files` (what a
    download fetches).
    """

    config_class: ClassVar[type]
    model_type: ClassVar[str]
    #: The files `from_pretrained` downloads from a hub repository.
    hub_files: ClassVar[list[str]] = [CONFIG_NAME, "*.safetensors", TORCH_WEIGHTS_NAME]

    # ---- hooks a model may override --------------------------------------------------------
    def config_dict(self) -> dict:
        """What config.json holds."""
        return {"model_type": self.model_type, **dataclasses.asdict(self.config)}

    @classmethod
    def config_from_dict(cls, values: dict, where: str) -> Any:
        """The config from config.json's `values`; errors name `where` (the file)."""
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
        """Official key names → ours, by config.json's `values` (identity for our folders)."""
        return state

    @classmethod
    def build(cls, config: Any) -> Any:
        """A model from its config (what `from_state_dict` runs on the meta device)."""
        return cls(config)

    @classmethod
    def load_path(cls, path: Path, source: str) -> Any:
        """The model in `path` (a resolved local folder), loaded strictly on the CPU."""
        values = read_config(path)
        config = cls.config_from_dict(values, str(path / CONFIG_NAME))
        state = cls.convert_state(values, read_weights(path))
        return cls.from_state_dict(config, state, source)

    # ---- the mixin ---------------------------------------------------------------------------
    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """config.json + model.safetensors in `folder` (atomic writes)."""
        return write_pretrained(folder, self.config_dict(), self.state_dict())

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> Any:
        """Load strictly, in eval mode, from a folder written by `save_pretrained` or a hub id
        (`revision`, `cache_dir`, `token`, `local_files_only` as in huggingface_hub)."""
        path = resolve(
            name_or_path,
            allow_patterns=cls.hub_files,
            revision=revision,
            cache_dir=cache_dir,
            token=token,
            local_files_only=local_files_only,
        )
        return cls.load_path(path, str(name_or_path)).to(device or "cpu").eval()

    @classmethod
    def from_state_dict(cls, config: Any, state: dict[str, torch.Tensor], source: str) -> Any:
        """Build on the meta device (no random initialisation) and load `state` strictly."""
        with torch.device("meta"):
            model = cls.build(config)
        model.to_empty(device="cpu")
        init_derived_buffers(model)
        load_strict(model, state, source)
        return model.eval()
