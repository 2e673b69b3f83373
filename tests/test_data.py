"""Every data format from tiny generated files, their errors, the decode cache, the validation split, real CIFAR-10."""
import codecs
import gzip
import io
import os
import pickle
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vitnas.nas.data import Normalize, load_dataset
from vitnas.nas.data import cifar, imagefolder
from vitnas.nas.data.dataset import stratified_holdout
from vitnas.errors import UserError

CIFAR10_ZIP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cifar10-jpg.zip"


def _image(path: Path, size: tuple[int, int], mode: str, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = value if mode == "L" else (value, 255 - value, 7)
    Image.new(mode, size, color).save(path)


def _image_tree(root: Path, test_split: str = "test") -> Path:
    """Class 'cat': RGB 8x8 JPEG + grayscale 8x8 PNG; class 'dog': RGB 12x10 PNG (resized and cropped to 8x8)."""
    _image(root / "train/cat/a.jpg", (8, 8), "RGB", 200)
    _image(root / "train/cat/b.png", (8, 8), "L", 90)
    _image(root / "train/dog/c.png", (12, 10), "RGB", 30)
    _image(root / "train/dog/d.png", (8, 8), "RGB", 40)
    (root / "train/dog/notes.txt").write_text("not an image")
    _image(root / f"{test_split}/cat/e.png", (8, 8), "RGB", 210)
    _image(root / f"{test_split}/dog/f.png", (8, 8), "RGB", 35)
    return root


def _zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                out.write(file, prefix + file.relative_to(folder).as_posix())
    return archive


def test_image_folder_mixed_modes_and_sizes(tmp_path):
    data = load_dataset(str(_image_tree(tmp_path / "tree")), val_fraction=0.0, cache_dir=tmp_path / "cache")
    assert data.classes == ["cat", "dog"]
    assert data.x_train.shape == (4, 3, 8, 8) and data.x_train.dtype == torch.uint8
    assert data.y_train.tolist() == [0, 0, 1, 1] and data.y_test.tolist() == [0, 1]
    gray = data.x_train[1]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2]) and int(gray[0, 0, 0]) == 90
    assert data.flip_invariant


def test_image_folder_all_gray_has_one_channel_and_val_folder_counts_as_test(tmp_path):
    for split, label, value in [("train", "a", 10), ("train", "b", 250), ("val", "a", 12), ("val", "b", 240)]:
        _image(tmp_path / f"tree/{split}/{label}/x.png", (6, 6), "L", value)
    data = load_dataset(str(tmp_path / "tree"), val_fraction=0.0, cache_dir=tmp_path / "cache")
    assert data.x_train.shape == (2, 1, 6, 6) and data.x_test.shape == (2, 1, 6, 6)


def test_zip_matches_folder_even_inside_a_wrapping_folder(tmp_path):
    tree = _image_tree(tmp_path / "tree")
    archive = _zip_folder(tree, tmp_path / "images.zip", prefix="wrapped/")
    from_folder = load_dataset(str(tree), val_fraction=0.0, cache_dir=tmp_path / "cache")
    from_zip = load_dataset(str(archive), val_fraction=0.0, cache_dir=tmp_path / "cache")
    assert torch.equal(from_folder.x_train, from_zip.x_train) and torch.equal(from_folder.x_test, from_zip.x_test)


def test_image_folder_errors_name_the_file(tmp_path):
    tree = _image_tree(tmp_path / "tree")
    _image(tree / "test/horse/g.png", (8, 8), "RGB", 1)
    with pytest.raises(UserError, match="test/horse.*not in train"):
        load_dataset(str(tree), cache_dir=tmp_path / "cache")
    (tree / "test/horse/g.png").unlink()
    good = (tree / "train/cat/a.jpg").read_bytes()
    (tree / "train/cat/a.jpg").write_bytes(good[: len(good) // 2])  # a truncated JPEG
    with pytest.raises(UserError, match=r"train/cat/a\.jpg: cannot decode"):
        load_dataset(str(tree), cache_dir=tmp_path / "cache")
    with pytest.raises(UserError, match="no train/ folder"):
        load_dataset(str(_zip_folder(tree / "test", tmp_path / "bad.zip")), cache_dir=tmp_path / "cache")


def test_second_load_reads_the_cache_without_decoding(tmp_path, monkeypatch):
    archive = _zip_folder(_image_tree(tmp_path / "tree"), tmp_path / "images.zip")
    first = load_dataset(str(archive), val_fraction=0.0, cache_dir=tmp_path / "cache")

    def no_decoding(*_):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(imagefolder, "decode_image", no_decoding)
    second = load_dataset(str(archive), val_fraction=0.0, cache_dir=tmp_path / "cache")
    assert torch.equal(first.x_train, second.x_train) and first.classes == second.classes


@pytest.mark.parametrize("damage", ["truncate", "flip_bits"])
def test_corrupt_cache_is_rebuilt(tmp_path, damage):
    archive = _zip_folder(_image_tree(tmp_path / "tree"), tmp_path / "images.zip")
    first = load_dataset(str(archive), val_fraction=0.0, cache_dir=tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache").glob("imagefolder-*.npz")
    raw = bytearray(cache_file.read_bytes())
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:  # one byte inside the stored pixels (past the member's local header and .npy header)
        raw[raw.index(b"x_train.npy") + 200] ^= 0xFF
    cache_file.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="rebuilding corrupt cache"):
        rebuilt = load_dataset(str(archive), val_fraction=0.0, cache_dir=tmp_path / "cache")
    assert torch.equal(first.x_train, rebuilt.x_train)
    with np.load(cache_file) as stored:  # and the rebuilt entry is whole again
        assert stored["x_train"].shape[0] == 4


def _cifar_folder(folder: Path, per_batch: int = 4) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 b"labels": [i % 3 for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b", b"c"]}))
    return folder


def test_cifar_batch_folder(tmp_path):
    folder = _cifar_folder(tmp_path / "cifar-10-batches-py")
    data = load_dataset(str(tmp_path), val_fraction=0.0)  # the parent folder is found too
    assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
    assert data.classes == ["a", "b", "c"]
    first = pickle.loads((folder / "data_batch_1").read_bytes())[b"data"][0]
    assert torch.equal(data.x_train[0].flatten(), torch.from_numpy(first))


def test_cifar100_layout(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, count in (("train", 6), ("test", 2)):
        batch = {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8), b"fine_labels": [1] * count,
                 b"coarse_labels": [0] * count}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [b"apple", b"bee"]}))
    data = load_dataset(str(folder), val_fraction=0.0)
    assert data.classes == ["apple", "bee"] and data.x_train.shape == (6, 3, 32, 32) and len(data.y_test) == 2


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_cifar_unpickler_refuses_code(tmp_path):
    folder = _cifar_folder(tmp_path / "cifar")
    marker = tmp_path / "pwned"
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": _Exploit(marker), b"labels": []}))
    with pytest.raises(UserError, match=r"data_batch_2: not a valid CIFAR batch \(refusing to load"):
        load_dataset(str(folder))
    assert not marker.exists()


def test_cifar_errors_name_the_file(tmp_path):
    folder = _cifar_folder(tmp_path / "cifar")
    batch = pickle.loads((folder / "data_batch_3").read_bytes())
    batch[b"labels"] = batch[b"labels"][:-1]
    (folder / "data_batch_3").write_bytes(pickle.dumps(batch))
    with pytest.raises(UserError, match="data_batch_3: 4 images but 3 labels"):
        load_dataset(str(folder))
    (folder / "data_batch_3").write_bytes(pickle.dumps(pickle.loads((folder / "data_batch_1").read_bytes()))[:50])
    with pytest.raises(UserError, match="data_batch_3: not a valid CIFAR batch"):
        load_dataset(str(folder))
    (folder / "data_batch_3").unlink()
    with pytest.raises(UserError, match="data_batch_3: missing"):
        load_dataset(str(folder))


def test_cifar_download_offline_says_how_to_pass_a_copy(tmp_path, monkeypatch):
    def offline(url, target):
        raise OSError("network unreachable")

    monkeypatch.setattr(cifar, "_fetch", offline)
    with pytest.raises(UserError, match="cannot download cifar10.*--dataset PATH/cifar-10-batches-py"):
        load_dataset("cifar10", cache_dir=tmp_path)


def _idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _idx_folder(folder: Path, compress: bool) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(1)
    for prefix, count in (("train", 12), ("t10k", 4)):
        files = {f"{prefix}-images-idx3-ubyte": rng.integers(0, 256, (count, 6, 6), dtype=np.uint8),
                 f"{prefix}-labels-idx1-ubyte": (np.arange(count) % 4).astype(np.uint8)}
        for name, array in files.items():
            raw = _idx_bytes(array)
            (folder / (name + ".gz" if compress else name)).write_bytes(gzip.compress(raw) if compress else raw)
    return folder


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder(tmp_path, compress):
    data = load_dataset(str(_idx_folder(tmp_path / "mnist", compress)), val_fraction=0.25)
    assert data.x_train.shape == (8, 1, 6, 6) and data.x_val.shape == (4, 1, 6, 6) and data.x_test.shape == (4, 1, 6, 6)
    assert data.classes == ["0", "1", "2", "3"] and not data.flip_invariant


def test_idx_errors_name_the_file(tmp_path):
    folder = _idx_folder(tmp_path / "mnist", compress=False)
    labels = folder / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"\x00\x00\x08\x03" + labels.read_bytes()[4:])
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte: wrong idx magic"):
        load_dataset(str(folder))
    labels.write_bytes(_idx_bytes((np.arange(3) % 4).astype(np.uint8)))
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte: 3 labels for 4 images"):
        load_dataset(str(folder))
    images = folder / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(UserError, match="train-images-idx3-ubyte: truncated"):
        load_dataset(str(folder))


@pytest.mark.parametrize("layout", ["NHWC", "NCHW", "NHW"])
def test_npz_layouts(tmp_path, layout):
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (10, 3, 5, 5), dtype=np.uint8)  # NCHW
    stored = {"NHWC": base.transpose(0, 2, 3, 1), "NCHW": base, "NHW": base[:, 0]}[layout]
    labels = np.arange(10) % 2
    np.savez(tmp_path / "d.npz", x_train=stored[:8], y_train=labels[:8], x_test=stored[8:], y_test=labels[8:])
    data = load_dataset(str(tmp_path / "d.npz"), val_fraction=0.0)
    expected = base[:8] if layout != "NHW" else base[:8, :1]
    assert torch.equal(data.x_train, torch.from_numpy(np.ascontiguousarray(expected)))


def test_npz_missing_array_is_named(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.zeros((2, 4, 4), np.uint8), y_train=np.zeros(2, np.int64))
    with pytest.raises(UserError, match=r"d\.npz: missing array\(s\) x_test, y_test"):
        load_dataset(str(tmp_path / "d.npz"))


def test_digits_is_embedded_8x8_gray():
    data = load_dataset("digits")
    assert (data.in_chans, data.image_size, data.num_classes) == (1, 8, 10)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 1797 and len(data.x_test) == 360
    assert int(data.x_train.max()) == 255 and not data.flip_invariant


def test_synthetic_spec_and_errors():
    data = load_dataset("synthetic:n=48,size=12,chans=1,classes=4", val_fraction=0.25)
    assert data.x_train.shape == (36, 1, 12, 12) and data.x_test.shape == (12, 1, 12, 12) and data.num_classes == 4
    with pytest.raises(UserError, match="bad synthetic option 'width=3'"):
        load_dataset("synthetic:width=3")
    with pytest.raises(UserError, match="unknown data set 'imagenet'"):
        load_dataset("imagenet")


def test_validation_split_is_disjoint_stratified_and_seeded():
    labels = np.repeat(np.arange(3), [20, 40, 60])
    kept, held = stratified_holdout(labels, 0.25, seed=3)
    assert not set(kept) & set(held) and len(kept) + len(held) == 120
    assert np.bincount(labels[held]).tolist() == [5, 10, 15]
    assert np.array_equal(held, stratified_holdout(labels, 0.25, seed=3)[1])
    assert not np.array_equal(held, stratified_holdout(labels, 0.25, seed=4)[1])
    data = load_dataset("synthetic:n=200,size=4,classes=5", val_fraction=0.2)
    train_rows = {bytes(x.numpy()) for x in data.x_train}
    assert not any(bytes(x.numpy()) in train_rows for x in data.x_val)
    assert torch.bincount(data.y_val).tolist() == [8] * 5


def test_normalize_uses_the_training_statistics():
    data = load_dataset("synthetic:n=64,size=8,chans=3,classes=2", val_fraction=0.0)
    normalized = Normalize(data.mean, data.std)(data.x_train.float() / 255.0)
    assert torch.allclose(normalized.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(normalized.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-2)


def _refused(spec: str, match: str, **options) -> None:
    """load_dataset(spec) ends in a one-line UserError matching `match` (the CLI prints it and exits 2)."""
    with pytest.raises(UserError, match=match) as raised:
        load_dataset(spec, **options)
    assert "\n" not in str(raised.value)


def test_sixteen_bit_png_is_scaled_to_eight_bits_not_clipped(tmp_path):
    ramp = (np.arange(64, dtype=np.uint32).reshape(8, 8) * 1040).astype(np.uint16)  # 0 .. 65520
    path = tmp_path / "ramp.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")  # Pillow reads 16-bit grey PNGs as I;16
    decoded = imagefolder.decode_image(path.read_bytes(), str(path))
    assert decoded.dtype == np.uint8 and decoded.shape == (8, 8)
    assert np.abs(decoded.astype(int) - np.round(ramp / 257)).max() == 0


def test_too_few_images_per_class_for_a_validation_split_are_refused_naming_the_minimum(tmp_path):
    _refused("synthetic:n=15,size=4,chans=1,classes=3", r"validation split.*empty.*at least 6 training images")
    _refused("synthetic:n=6,size=4,chans=1,classes=3", r"at least 3 training images", val_fraction=0.2)
    assert len(load_dataset("synthetic:n=18,size=4,chans=1,classes=3").x_val) == 3
    assert len(load_dataset("synthetic:n=15,size=4,chans=1,classes=3", val_fraction=0.0).x_val) == 0


class _Call:
    """Pickles as a call of `function(*arguments)`."""

    def __init__(self, function, *arguments):
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


@pytest.mark.parametrize("payload", [
    _Call(bytes, 10**13),
    _Call(list, range(10**12)),
    _Call(np.ndarray, (10**7, 10**7)),
    _Call(np.zeros(1).__reduce__()[0], np.ndarray, (10**7, 10**7), b"b"),  # numpy's _reconstruct
    _Call(codecs.encode, "x" * 64, "utf-32"),
], ids=["bytes", "list-range", "ndarray", "reconstruct", "codec"])
def test_cifar_unpickler_admits_only_what_the_format_needs(tmp_path, payload):
    folder = _cifar_folder(tmp_path / "cifar")
    # Protocol 4 names builtins as `builtins` (protocol 2 as `__builtin__`).
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": payload, b"labels": []}, protocol=4))
    _refused(str(folder), r"data_batch_2: not a valid CIFAR batch")


def test_cifar_python2_batch_still_loads(tmp_path):
    """The official batches were pickled by Python 2 (strings as BINSTRING, numpy under numpy.core): written here
    opcode by opcode, a 2-image batch must load through the restricted unpickler."""
    def short_string(text: bytes) -> bytes:
        return b"U" + bytes([len(text)]) + text

    pixels = (np.arange(2 * 3072) % 251).astype(np.uint8)
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + short_string(b"b") + b"\x87R("
             b"K\x01K\x02M\x00\x0c\x86cnumpy\ndtype\n" + short_string(b"u1") + b"K\x00K\x01\x87R(K\x03"
             + short_string(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T"
             + struct.pack("<I", pixels.size) + pixels.tobytes() + b"tb")
    path = tmp_path / "data_batch_1"
    path.write_bytes(b"\x80\x02}(" + short_string(b"data") + array + short_string(b"labels") + b"](K\x01K\x02eu.")
    batch = cifar.load_pickle(path)
    assert np.array_equal(batch["data"].reshape(-1), pixels) and batch["labels"] == [1, 2]


@pytest.mark.parametrize("opcodes", [
    b"\x80\x04\x8e" + struct.pack("<Q", 10**13) + b"abc.",  # BINBYTES8 claiming 10 TB
    b"\x80\x04]r" + struct.pack("<I", 2**32 - 1) + b".",  # EMPTY_LIST memoised at index 2**32 - 1
], ids=["bytes-length", "memo-index"])
def test_cifar_unpickler_checks_claimed_lengths_before_allocating(tmp_path, opcodes):
    folder = _cifar_folder(tmp_path / "cifar")
    (folder / "data_batch_4").write_bytes(opcodes)
    _refused(str(folder), r"data_batch_4: not a valid CIFAR batch")


def _npz_claiming(path: Path, shape: tuple[int, ...]) -> Path:
    """An npz whose x_train.npy header claims `shape` (uint8) but holds no pixels; the other arrays are fine."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", header.getvalue())
        for key, array in (("y_train", np.zeros(2, np.int64)), ("x_test", np.zeros((2, 4, 4), np.uint8)),
                           ("y_test", np.zeros(2, np.int64))):
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(f"{key}.npy", buffer.getvalue())
    return path


def _gzip_of_zeros(header: bytes, zeros: int) -> bytes:
    """gzip of `header` followed by `zeros` zero bytes, compressed in chunks (a small file that expands a lot)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(header)] + [compressor.compress(chunk) for _ in range(zeros >> 20)]
    return b"".join(parts + [compressor.flush()])


def test_small_files_claiming_huge_sizes_are_refused_before_allocating(tmp_path):
    _refused(str(_npz_claiming(tmp_path / "huge.npz", (300 * 2**30, 1, 1))), r"huge\.npz:x_train.*GiB.*limit")
    _refused(str(_npz_claiming(tmp_path / "short.npz", (2, 4, 4))), r"short\.npz:x_train.*truncated")
    _refused("synthetic:size=100000", r"synthetic.*GiB.*limit")
    _refused("synthetic:classes=1000000000", r"classes.*at most n")
    folder = _idx_folder(tmp_path / "mnist", compress=True)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(_gzip_of_zeros(_idx_bytes(np.zeros((4, 6, 6), np.uint8)),
                                                                        64 << 20))
    tracemalloc.start()
    try:
        _refused(str(folder), r"t10k-images-idx3-ubyte\.gz: .*more data than its header")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # the 64 MiB of zeros are never decompressed as a whole


def _patched_zip(source: Path, target: Path, member: str, field: str, value: int) -> Path:
    """A copy of a zip whose `member` has its flag bits or compression method set, in its local and central headers."""
    raw = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        local = archive.getinfo(member).header_offset
    central = raw.index(member.encode(), raw.index(b"PK\x01\x02")) - 46  # the name follows a 46-byte header
    local_field, central_field = {"flags": (6, 8), "method": (8, 10)}[field]
    struct.pack_into("<H", raw, local + local_field, value)
    struct.pack_into("<H", raw, central + central_field, value)
    target.write_bytes(bytes(raw))
    return target


def _zip_with_stored_member(tmp_path: Path) -> tuple[Path, str]:
    tree = _image_tree(tmp_path / "tree")
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as out:
        for file in sorted(tree.rglob("*")):
            if file.is_file():
                out.write(file, file.relative_to(tree).as_posix())
    return archive, "train/dog/d.png"


@pytest.mark.parametrize("damage", ["encrypted", "unsupported-method", "bad-crc"])
def test_unreadable_zip_entries_are_refused_naming_the_entry(tmp_path, damage):
    archive, member = _zip_with_stored_member(tmp_path)
    if damage == "encrypted":
        target = _patched_zip(archive, tmp_path / "bad.zip", member, "flags", 0x1)
    elif damage == "unsupported-method":
        target = _patched_zip(archive, tmp_path / "bad.zip", member, "method", 99)
    else:
        raw = bytearray(archive.read_bytes())
        raw[raw.index(b"IDAT", raw.index(member.encode())) + 8] ^= 0xFF  # a pixel byte of the stored PNG
        target = tmp_path / "bad.zip"
        target.write_bytes(bytes(raw))
    _refused(str(target), rf"bad\.zip:{member}: cannot read", val_fraction=0.0, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("damage", ["encrypted", "unsupported-method"])
def test_unreadable_npz_members_are_refused(tmp_path, damage):
    good = tmp_path / "d.npz"
    np.savez(good, x_train=np.zeros((2, 4, 4), np.uint8), y_train=np.zeros(2, np.int64),
             x_test=np.zeros((2, 4, 4), np.uint8), y_test=np.zeros(2, np.int64))
    field, value = ("flags", 0x1) if damage == "encrypted" else ("method", 99)
    _refused(str(_patched_zip(good, tmp_path / "bad.npz", "x_test.npy", field, value)), r"bad\.npz: cannot read")


def test_a_device_file_is_not_a_data_set():
    _refused("/dev/null", r"/dev/null: .*not a file or folder")


def _npz(path: Path, **overrides) -> Path:
    arrays = {"x_train": np.zeros((12, 4, 4), np.uint8), "y_train": np.arange(12) % 2,
              "x_test": np.zeros((2, 4, 4), np.uint8), "y_test": np.arange(2) % 2, **overrides}
    np.savez(path, **arrays)
    return path


def test_empty_or_malformed_arrays_are_refused_before_training(tmp_path):
    _refused(str(_npz(tmp_path / "a.npz", x_test=np.zeros((0, 4, 4), np.uint8), y_test=np.zeros(0, np.int64))),
             r"no test images")
    _refused(str(_npz(tmp_path / "b.npz", x_test=np.zeros((0, 4, 4), np.float32), y_test=np.zeros(0, np.int64))),
             r"no test images")
    _refused(str(_npz(tmp_path / "c.npz", classes=np.array("cat"))), r"c\.npz:classes: .*one name per class")
    _refused(str(_npz(tmp_path / "d.npz", y_train=np.arange(12) * 10**5)), r"d\.npz:y_train: labels .*0\.\.11")
    assert load_dataset(str(_npz(tmp_path / "e.npz", classes=np.array(["cat", "dog"])))).classes == ["cat", "dog"]
    folder = _idx_folder(tmp_path / "mnist", compress=False)
    (folder / "train-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((0, 6, 6), np.uint8)))
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(0, np.uint8)))
    _refused(str(folder), r"no training images")


@pytest.mark.parametrize(("labels", "message"), [
    ([0, float("nan"), 1, 2], r"data_batch_1: 'labels' must be integers"),
    (["cat", "dog", "cat", "dog"], r"data_batch_1: 'labels' must be integers"),
    ([[0, 1], [1, 2], [2, 0], [0, 1]], r"data_batch_1: 'labels' must be integers"),
])
def test_cifar_labels_that_are_not_integers_are_refused(tmp_path, labels, message):
    folder = _cifar_folder(tmp_path / "cifar")
    batch = pickle.loads((folder / "data_batch_1").read_bytes())
    (folder / "data_batch_1").write_bytes(pickle.dumps({**batch, b"labels": labels}, protocol=2))
    _refused(str(folder), message)


@pytest.mark.parametrize("names", [b"abc", 3, {b"a": 1}, [b"a", 7, b"c"]])
def test_cifar_label_names_must_be_a_list_of_names(tmp_path, names):
    folder = _cifar_folder(tmp_path / "cifar")
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    _refused(str(folder), r"batches\.meta: 'label_names' must be a list of class names")


def test_a_folder_in_place_of_a_cifar_batch_is_refused(tmp_path):
    folder = _cifar_folder(tmp_path / "cifar")
    (folder / "data_batch_5").unlink()
    (folder / "data_batch_5").mkdir()
    _refused(str(folder), r"data_batch_5: cannot read")


@pytest.mark.parametrize("seed", ["-1", str(10**23)])
def test_synthetic_seed_out_of_range_is_refused(seed):
    _refused(f"synthetic:n=64,seed={seed}", r"seed.*0\.\.4294967295")


@pytest.fixture(scope="session")
def cifar10_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cifar10-cache")  # shared by the session: the 60k JPEGs are decoded once


@pytest.mark.slow  # decodes the 60,000 real JPEGs
def test_real_cifar10_zip_loads(cifar10_cache):
    if not CIFAR10_ZIP.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{CIFAR10_ZIP} is missing, and CI needs it")
        pytest.skip(f"{CIFAR10_ZIP} is not here (outside CI)")
    data = load_dataset(str(CIFAR10_ZIP), val_fraction=0.1, cache_dir=cifar10_cache)
    assert (data.in_chans, data.image_size, data.num_classes) == (3, 32, 10)
    assert len(data.x_train) + len(data.x_val) == 50_000 and len(data.x_test) == 10_000
    assert data.classes[0] == "airplane" and torch.bincount(data.y_test).tolist() == [1000] * 10
    assert [round(m, 2) for m in data.mean] == [0.49, 0.48, 0.45]
