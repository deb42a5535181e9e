"""Data roots, set resolution, the embedded sets, benchmark pairs and training patches."""

import numpy as np
import pytest
import torch
from PIL import Image

from fakd.data import (
    EMBEDDED_SETS,
    BenchmarkSet,
    TrainingPatches,
    available_sets,
    imresize,
    modcrop,
    open_benchmark_set,
    read_image,
    resolve_data_root,
    resolve_set,
    write_image,
)
from fakd.data.embedded import MAX_LONG_SIDE, embedded_set_images
from fakd.errors import FakdError


def textured(height, width, seed):
    """A smooth random texture (uint8 RGB): realistic enough that misalignment shows up clearly."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((3, height // 8 + 2, width // 8 + 2)))
    fine = imresize(coarse, size=(height, width)) * 200 + torch.from_numpy(rng.random((3, height, width))) * 40
    return fine.clamp(0, 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.fixture
def data_root(tmp_path):
    """A small data root: Mini/HR (colour + one greyscale + odd sizes), Mini/LR_bicubic/X2, Plain (no HR/)."""
    root = tmp_path / "root"
    hr = root / "Mini" / "HR"
    sizes = {"a": (61, 83), "b": (96, 64), "c": (70, 70), "d": (49, 100)}
    for index, (name, size) in enumerate(sizes.items()):
        write_image(hr / f"{name}.png", textured(*size, seed=index))
    grey = textured(66, 50, seed=9)[..., 0]
    Image.fromarray(grey).save(hr / "grey.png")
    for path in sorted(hr.iterdir()):
        cropped = torch.from_numpy(modcrop(read_image(path), 2)).permute(2, 0, 1)
        write_image(root / "Mini" / "LR_bicubic" / "X2" / path.name, imresize(cropped, scale=0.5).permute(1, 2, 0).numpy())
    write_image(root / "Plain" / "p.png", textured(40, 40, seed=5))
    (root / "BSD100" / "HR").mkdir(parents=True)
    write_image(root / "BSD100" / "HR" / "x.png", textured(30, 30, seed=6))
    return root


# ---------------------------------------------------------------- roots
def test_resolve_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("FAKD_DATA_ROOT", raising=False)
    assert resolve_data_root() is None
    assert resolve_data_root(tmp_path) == tmp_path
    monkeypatch.setenv("FAKD_DATA_ROOT", str(tmp_path))
    assert resolve_data_root() == tmp_path
    assert resolve_data_root(tmp_path / "..") == tmp_path / ".."  # the argument wins over the environment
    with pytest.raises(FakdError, match="absent"):
        resolve_data_root(tmp_path / "absent")
    monkeypatch.setenv("FAKD_DATA_ROOT", str(tmp_path / "gone"))
    with pytest.raises(FakdError, match="FAKD_DATA_ROOT.*gone"):
        resolve_data_root()


def test_resolve_set_by_name_alias_and_path(data_root, monkeypatch):
    monkeypatch.delenv("FAKD_DATA_ROOT", raising=False)
    mini = resolve_set("Mini", data_root=data_root)
    assert (mini.name, mini.hr_folder, mini.lr_root) == ("Mini", data_root / "Mini" / "HR", data_root / "Mini" / "LR_bicubic")
    assert resolve_set("mini", data_root=data_root).hr_folder == mini.hr_folder
    assert resolve_set("B100", data_root=data_root).hr_folder == data_root / "BSD100" / "HR"
    assert resolve_set("B100", data_root=data_root).name == "B100"
    assert resolve_set(data_root / "Mini").hr_folder == mini.hr_folder
    assert resolve_set(str(data_root / "Mini" / "HR")).lr_root == mini.lr_root
    plain = resolve_set(data_root / "Plain")
    assert (plain.name, plain.hr_folder) == ("Plain", data_root / "Plain")
    monkeypatch.setenv("FAKD_DATA_ROOT", str(data_root))
    assert resolve_set("Mini").hr_folder == mini.hr_folder
    assert available_sets() == ["BSD100", "Mini", "Plain", *EMBEDDED_SETS]


def test_unknown_set_names_the_sets_found(data_root, monkeypatch):
    monkeypatch.delenv("FAKD_DATA_ROOT", raising=False)
    with pytest.raises(FakdError, match="'Set99'.*BSD100, Mini, Plain, skimage-train, skimage-test"):
        resolve_set("Set99", data_root=data_root)
    with pytest.raises(FakdError, match="no data root.*FAKD_DATA_ROOT"):
        resolve_set("Set99")
    with pytest.raises(FakdError, match="not found"):
        resolve_set(data_root / "Nothing")


# ---------------------------------------------------------------- embedded sets
def test_embedded_sets_are_disjoint_rgb_photographs_of_bounded_size():
    assert set(EMBEDDED_SETS) == {"skimage-train", "skimage-test"}
    assert not set(EMBEDDED_SETS["skimage-train"]) & set(EMBEDDED_SETS["skimage-test"])
    for set_name, names in EMBEDDED_SETS.items():
        images = embedded_set_images(set_name)
        assert [name for name, _ in images] == list(names)
        for name, array in images:
            assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3, name
            assert max(array.shape[:2]) <= MAX_LONG_SIDE and min(array.shape[:2]) >= 256, name
            assert np.abs(array[..., 0].astype(int) - array[..., 2]).mean() > 3, f"{name} looks grey"


def test_embedded_test_set_opens_like_any_set():
    benchmark = open_benchmark_set("skimage-test", scale=3)
    assert benchmark.name == "skimage-test" and len(benchmark) == 3 and benchmark.scale == 3
    astronaut = benchmark[0]
    assert astronaut.name == "astronaut" and astronaut.hr.shape == (3, 510, 510) and astronaut.lr.shape == (3, 170, 170)
    assert torch.equal(astronaut.lr, imresize(astronaut.hr, scale=1 / 3))
    with pytest.raises(FakdError, match="premade"):
        open_benchmark_set("skimage-test", scale=3, lr_source="premade")


# ---------------------------------------------------------------- benchmark sets
def test_benchmark_pairs_are_modcropped_with_bicubic_lr(data_root):
    benchmark = open_benchmark_set("Mini", scale=3, data_root=data_root)
    assert isinstance(benchmark, BenchmarkSet) and benchmark.names == ["a", "b", "c", "d", "grey"]
    for pair in benchmark:
        source = read_image(data_root / "Mini" / "HR" / f"{pair.name}.png")
        height, width = source.shape[0] // 3 * 3, source.shape[1] // 3 * 3
        assert pair.hr.dtype == torch.uint8 and pair.lr.dtype == torch.uint8
        assert pair.hr.shape == (3, height, width) and pair.lr.shape == (3, height // 3, width // 3)
        assert torch.equal(pair.hr, torch.from_numpy(source[:height, :width]).permute(2, 0, 1))
        assert torch.equal(pair.lr, imresize(pair.hr, scale=1 / 3))
    grey = benchmark[4]
    assert torch.equal(grey.hr[0], grey.hr[1]) and torch.equal(grey.hr[1], grey.hr[2])


def test_premade_lr_is_read_and_checked(data_root):
    premade = open_benchmark_set("Mini", scale=2, data_root=data_root, lr_source="premade")
    made = open_benchmark_set("Mini", scale=2, data_root=data_root)
    for read_pair, made_pair in zip(premade, made):
        assert torch.equal(read_pair.lr, made_pair.lr) and torch.equal(read_pair.hr, made_pair.hr)
    with pytest.raises(FakdError, match="LR_bicubic.X3"):
        open_benchmark_set("Mini", scale=3, data_root=data_root, lr_source="premade")
    (data_root / "Mini" / "LR_bicubic" / "X2" / "c.png").unlink()
    with pytest.raises(FakdError, match="'c'"):
        open_benchmark_set("Mini", scale=2, data_root=data_root, lr_source="premade")
    write_image(data_root / "Mini" / "LR_bicubic" / "X2" / "c.png", textured(20, 20, seed=1))
    with pytest.raises(FakdError, match="c.png.*expected 35x35"):
        open_benchmark_set("Mini", scale=2, data_root=data_root, lr_source="premade")


@pytest.mark.parametrize("scale", [1, 0, -2, 2.5, "4", True, None])
def test_bad_scale(data_root, scale):
    with pytest.raises(FakdError, match="scale"):
        open_benchmark_set("Mini", scale=scale, data_root=data_root)
    with pytest.raises(FakdError, match="scale"):
        TrainingPatches(["Mini"], scale=scale, lr_patch_size=8, data_root=data_root)


def test_benchmark_errors_name_the_problem(data_root):
    with pytest.raises(FakdError, match="lr_source"):
        open_benchmark_set("Mini", scale=2, data_root=data_root, lr_source="nearest")
    write_image(data_root / "Mini" / "HR" / "tiny.png", textured(40, 3, seed=2))
    with pytest.raises(FakdError, match="'tiny'.*smaller than the scale x4"):
        open_benchmark_set("Mini", scale=4, data_root=data_root)
    (data_root / "Mini" / "HR" / "tiny.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(FakdError, match="tiny.png"):
        open_benchmark_set("Mini", scale=2, data_root=data_root)
    (data_root / "Empty" / "HR").mkdir(parents=True)
    with pytest.raises(FakdError, match="no images.*Empty"):
        open_benchmark_set(data_root / "Empty", scale=2)
    with pytest.raises(FakdError, match="Missing"):
        open_benchmark_set(data_root / "Missing", scale=2)


# ---------------------------------------------------------------- training patches
@pytest.fixture
def patches(data_root):
    return TrainingPatches(["Mini", "Plain"], scale=2, lr_patch_size=12, data_root=data_root, seed=7, val_count=2)


def test_batches_are_a_pure_function_of_seed_and_iteration(patches, data_root):
    lr, hr = patches.batch(5, 4)
    assert lr.shape == (4, 3, 12, 12) and hr.shape == (4, 3, 24, 24)
    assert lr.dtype == torch.float32 and 0 <= float(lr.min()) and float(hr.max()) <= 1
    again = TrainingPatches(["Mini", "Plain"], scale=2, lr_patch_size=12, data_root=data_root, seed=7, val_count=2)
    assert torch.equal(again.batch(5, 4)[0], lr) and torch.equal(again.batch(5, 4)[1], hr)
    patches.batch(6, 4)  # drawing other batches first changes nothing
    assert torch.equal(patches.batch(5, 4)[1], hr)
    assert not torch.equal(patches.batch(6, 4)[1], hr)
    other_seed = TrainingPatches(["Mini", "Plain"], scale=2, lr_patch_size=12, data_root=data_root, seed=8, val_count=2)
    assert not torch.equal(other_seed.batch(5, 4)[1], hr)


def test_patches_are_crops_of_the_cached_full_image_lr_and_hr(patches):
    lr, hr = patches.batch(3, 16)
    draws = patches.patch_draws(3, 16)
    assert len({draw.transform for draw in draws}) > 1 and len({draw.image for draw in draws}) > 1
    for sample, draw in enumerate(draws):
        image = patches.training_image(draw.image)
        assert torch.equal(image.lr, imresize(image.hr, scale=0.5))  # LR made from the whole image
        lr_crop = image.lr[:, draw.top : draw.top + 12, draw.left : draw.left + 12]
        hr_crop = image.hr[:, draw.top * 2 : draw.top * 2 + 24, draw.left * 2 : draw.left * 2 + 24]
        undone_lr, undone_hr = lr[sample], hr[sample]
        if draw.transform & 4:
            undone_lr, undone_hr = undone_lr.transpose(1, 2), undone_hr.transpose(1, 2)
        if draw.transform & 2:
            undone_lr, undone_hr = undone_lr.flip(1), undone_hr.flip(1)
        if draw.transform & 1:
            undone_lr, undone_hr = undone_lr.flip(2), undone_hr.flip(2)
        assert torch.equal(undone_lr, lr_crop.float() / 255) and torch.equal(undone_hr, hr_crop.float() / 255)


def test_augmented_lr_and_hr_patches_stay_aligned(patches):
    """Independent of the draws: away from the patch border, the LR patch is the bicubic image of its HR patch."""
    lr, hr = patches.batch(11, 16)
    interior = slice(3, -3)
    for lr_patch, hr_patch in zip(lr.double(), hr.double()):
        shrunk = imresize(hr_patch, scale=0.5)
        error = (shrunk - lr_patch)[:, interior, interior].abs().max()
        assert error <= 1.01 / 255, error
    shifted = imresize(hr[0, :, 1:-1, 1:-1].double(), size=(11, 11))
    assert (shifted - lr[0, :, :11, :11].double())[:, 3:-3, 3:-3].abs().max() > 2 / 255  # the check can fail


def test_augment_off_gives_untransformed_patches(data_root):
    plain = TrainingPatches(["Mini"], scale=2, lr_patch_size=12, data_root=data_root, augment=False, val_count=1)
    assert all(draw.transform == 0 for draw in plain.patch_draws(0, 32))


def test_validation_is_held_apart_and_deterministic(data_root):
    patches = TrainingPatches(["Mini", "Plain"], scale=2, lr_patch_size=12, data_root=data_root, val_count=2, val_crop=40)
    assert len(patches.validation) == 2 and len(patches.train_names) == 4
    assert not set(patches.validation_names) & set(patches.train_names)
    assert sorted(patches.validation_names + patches.train_names) == ["Mini/a", "Mini/b", "Mini/c", "Mini/d", "Mini/grey", "Plain/p"]
    for pair in patches.validation:
        assert max(pair.hr.shape[1:]) <= 40 and pair.hr.shape[1] % 2 == 0 and pair.hr.shape[2] % 2 == 0
        assert torch.equal(pair.lr, imresize(pair.hr, scale=0.5))
    reordered = TrainingPatches(["Plain", "Mini"], scale=2, lr_patch_size=8, data_root=data_root, val_count=2, seed=3)
    assert sorted(reordered.validation_names) == sorted(patches.validation_names)  # depends on the names only
    assert patches.validation.scale == 2


def test_too_small_training_images_are_skipped_or_an_error(data_root):
    with pytest.warns(UserWarning, match="smaller than the HR patch 64"):
        patches = TrainingPatches(["Mini"], scale=2, lr_patch_size=32, data_root=data_root, val_count=0)
    assert sorted(patches.skipped_names) == ["a", "d", "grey"]  # 61, 49 and 50 px on their short side
    assert sorted(patches.train_names) == ["b", "c"]
    with pytest.raises(FakdError, match="every training image.*smaller than the HR patch 200"):
        TrainingPatches(["Mini"], scale=2, lr_patch_size=100, data_root=data_root, val_count=0)


def test_training_errors(data_root):
    with pytest.raises(FakdError, match="Nope"):
        TrainingPatches(["Nope"], scale=2, lr_patch_size=8, data_root=data_root)
    (data_root / "Void").mkdir()
    with pytest.raises(FakdError, match="no images.*Void"):
        TrainingPatches(["Void"], scale=2, lr_patch_size=8, data_root=data_root)
    with pytest.raises(FakdError, match="val_count"):
        TrainingPatches(["Plain"], scale=2, lr_patch_size=8, data_root=data_root, val_count=1)
    with pytest.raises(FakdError, match="lr_patch_size"):
        TrainingPatches(["Mini"], scale=2, lr_patch_size=0, data_root=data_root)
    (data_root / "Plain" / "broken.png").write_bytes(b"")
    with pytest.raises(FakdError, match="broken.png"):
        TrainingPatches(["Plain"], scale=2, lr_patch_size=8, data_root=data_root, val_count=0)


def test_embedded_training_set_works_without_a_data_root(monkeypatch):
    monkeypatch.delenv("FAKD_DATA_ROOT", raising=False)
    patches = TrainingPatches(["skimage-train"], scale=4, lr_patch_size=24, val_count=1, val_crop=128)
    assert len(patches.train_names) == 4 and len(patches.validation) == 1
    lr, hr = patches.batch(0, 2)
    assert lr.shape == (2, 3, 24, 24) and hr.shape == (2, 3, 96, 96)


# ---------------------------------------------------------------- the real sets
@pytest.mark.shared_data
def test_real_sets_open_by_name_and_alias(shared_data):
    set14 = open_benchmark_set("Set14", scale=4, data_root=shared_data, lr_source="premade")
    assert len(set14) == 14
    bridge = set14[set14.names.index("bridge")]
    assert bridge.hr.shape == (3, 512, 512) and bridge.lr.shape == (3, 128, 128)
    assert torch.equal(bridge.lr[0], bridge.lr[2])
    b100 = open_benchmark_set("B100", scale=3, data_root=shared_data, lr_source="premade")
    assert b100.name == "B100" and len(b100) == 100
    assert all(pair.hr.shape[1] % 3 == 0 and pair.lr.shape[1] * 3 == pair.hr.shape[1] for pair in b100)
