"""``load_checkpoint``: a Detectron2 checkpoint (.pth torch zip or .pkl pickle) as numpy arrays.

The file's content, not its name, decides the format. Both formats are untrusted pickles and go
through the restricted unpickler of ``_safe_pickle``; torch is never imported.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from export_tools.checkpoint._allowlist import allowed_globals
from export_tools.checkpoint._numpy_compat import ArrayBuilder
from export_tools.checkpoint._safe_pickle import safe_loads, short_text
from export_tools.checkpoint._torch_compat import TensorRef
from export_tools.checkpoint._torch_zip import TorchZipReader
from export_tools.errors import CheckpointError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 4 * 1024**3
"""Default limit on bytes read from a checkpoint and on the size of the loaded tensors."""

FORMAT_TORCH_ZIP = "torch-zip"
FORMAT_PICKLE = "pickle"

# Legacy (torch < 1.6) files start with a protocol-2 pickle of this magic number.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


@dataclass(frozen=True)
class CheckpointInfo:
    """What ``load_checkpoint`` found besides the weights.

    ``extra_keys``: top-level keys besides the model dict (optimizer, scheduler, iteration,
    __author__, ...). ``matching_heuristics``: Detectron2's flag asking to match parameter names
    heuristically (set by model-zoo files, and implied for Caffe2/Detectron1 pickles).
    ``author``: the ``__author__`` of a model-zoo pickle ("Caffe2" for Detectron1 pickles).
    """

    path: str
    format: str
    extra_keys: tuple[str, ...]
    matching_heuristics: bool
    num_tensors: int
    num_bytes: int
    author: str | None = None


@dataclass(frozen=True)
class _Selected:
    model: dict[Any, Any]
    extra_keys: tuple[str, ...]
    matching_heuristics: bool
    author: str | None


def _sniff(head: bytes) -> str:
    """``FORMAT_TORCH_ZIP`` or ``FORMAT_PICKLE`` from the first bytes; CheckpointError otherwise."""
    if not head:
        raise CheckpointError("the file is empty")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return FORMAT_TORCH_ZIP
    if head.startswith(_LEGACY_TORCH_MAGIC):
        raise CheckpointError(
            "legacy torch serialization (written by torch < 1.6 or with "
            "_use_new_zipfile_serialization=False) is not supported; re-save it with a current "
            "torch.save"
        )
    if len(head) >= 262 and head[257:262] == b"ustar":
        raise CheckpointError("a tar archive (very old torch format) is not supported")
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return FORMAT_PICKLE
    if head[:1] in (b"(", b"}", b"]"):  # protocol 0 and 1 pickles of a dict or list
        return FORMAT_PICKLE
    if head.startswith(b"\x1f\x8b"):
        raise CheckpointError("the file is gzip-compressed; decompress it first")
    raise CheckpointError(
        f"not a checkpoint: expected a torch zip (.pth) or a pickle (.pkl), but the file starts "
        f"with bytes {head[:8].hex(' ')}"
    )


def _flag(value: Any) -> bool:
    return isinstance(value, int) and bool(value)


def _key_names(top: dict[Any, Any], skip: str) -> tuple[str, ...]:
    return tuple(k if isinstance(k, str) else short_text(k) for k in top if k != skip)


def _select_torch(top: Any) -> _Selected:
    if not isinstance(top, dict):
        raise CheckpointError(f"the checkpoint holds {short_text(top)}, not a dict")
    if "model" not in top:
        return _Selected(top, (), _flag(top.get("matching_heuristics")), None)
    author = top.get("__author__")
    return _Selected(
        top["model"],
        _key_names(top, "model"),
        _flag(top.get("matching_heuristics")),
        author if isinstance(author, str) else None,
    )


def _select_pickle(top: Any) -> _Selected:
    """Detectron2's reading of .pkl files: model-zoo form, else Caffe2/Detectron1 blobs."""
    if isinstance(top, dict) and isinstance(top.get("model"), dict):
        return _select_torch(top)
    if not isinstance(top, dict):
        raise CheckpointError(f"the pickle holds {short_text(top)}, not a dict")
    blobs = top.get("blobs", top)
    if not isinstance(blobs, dict):
        raise CheckpointError(f"'blobs' holds {short_text(blobs)}, not a dict")
    model = {k: v for k, v in blobs.items() if not (isinstance(k, str) and k.endswith("_momentum"))}
    extra = _key_names(top, "blobs") if "blobs" in top else ()
    return _Selected(model, extra, True, "Caffe2")


def _split_values(model: Any) -> tuple[dict[str, TensorRef], dict[str, ArrayBuilder]]:
    """Model dict entries by kind; CheckpointError naming any entry that is not a tensor."""
    if not isinstance(model, dict):
        raise CheckpointError(f"the model entry holds {short_text(model)}, not a dict of tensors")
    tensors: dict[str, TensorRef] = {}
    arrays: dict[str, ArrayBuilder] = {}
    for name, value in model.items():
        if not isinstance(name, str):
            raise CheckpointError(f"the model dict has a non-string key {short_text(name)}")
        if isinstance(value, TensorRef):
            tensors[name] = value
        elif isinstance(value, ArrayBuilder):
            arrays[name] = value
        else:
            what = short_text(value)
            raise CheckpointError(
                f"model entry {short_text(name, 200)} holds {what}, not a tensor or array"
            )
    return tensors, arrays


def _strip_module_prefix(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop the ``module.`` that DataParallel adds, if every name has it."""
    prefix = "module."
    if state and all(name.startswith(prefix) for name in state):
        return {name[len(prefix) :]: value for name, value in state.items()}
    return state


def _read_pickle_file(path: str, max_bytes: int) -> Any:
    size = os.path.getsize(path)
    if size > max_bytes:
        raise CheckpointError(f"the pickle has {size} bytes, more than the limit of {max_bytes}")
    with open(path, "rb") as handle:
        data = handle.read(size + 1)
    return safe_loads(data, allowed_globals())


def _load(path: str, max_bytes: int) -> tuple[str, _Selected, dict[str, np.ndarray]]:
    with open(path, "rb") as handle:
        fmt = _sniff(handle.read(512))
    if fmt == FORMAT_TORCH_ZIP:
        with TorchZipReader(path, max_bytes) as reader:
            selected = _select_torch(reader.load())
            tensors, builders = _split_values(selected.model)
            state = reader.arrays(tensors)
    else:
        selected = _select_pickle(_read_pickle_file(path, max_bytes))
        # Without a storage resolver a plain pickle cannot produce tensor placeholders.
        _tensors, builders = _split_values(selected.model)
        state = {}
    for name, builder in builders.items():
        try:
            state[name] = builder.to_array()
        except CheckpointError as exc:
            raise CheckpointError(f"array {short_text(name, 200)}: {exc}") from None
    order = {name: i for i, name in enumerate(selected.model)}
    ordered = dict(sorted(state.items(), key=lambda item: order[item[0]]))
    return fmt, selected, _strip_module_prefix(ordered)


def load_checkpoint(
    path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[dict[str, np.ndarray], CheckpointInfo]:
    """Load the model weights of a Detectron2 checkpoint without torch and without running code.

    Returns ``(state, info)``: ``state`` maps parameter names (as in the checkpoint's model dict,
    without a DataParallel ``module.`` prefix) to C-contiguous arrays of their stored shape and
    dtype (bfloat16 becomes float32). ``max_bytes`` bounds the bytes read from the file and the
    size of the returned arrays. Raises CheckpointError (naming the file) for anything that is
    not a readable, safe checkpoint.
    """
    path_str = os.fspath(path)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
    try:
        fmt, selected, state = _load(path_str, max_bytes)
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {path_str}: {exc}") from exc
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path_str}: cannot read: {exc.strerror}") from exc
    info = CheckpointInfo(
        path=path_str,
        format=fmt,
        extra_keys=selected.extra_keys,
        matching_heuristics=selected.matching_heuristics,
        num_tensors=len(state),
        num_bytes=sum(array.nbytes for array in state.values()),
        author=selected.author,
    )
    logger.info(
        "Loaded checkpoint %s (%s): %d tensors, %.1f MB%s",
        path_str,
        fmt,
        info.num_tensors,
        info.num_bytes / 1e6,
        f", extra keys: {', '.join(info.extra_keys)}" if info.extra_keys else "",
    )
    return state, info
