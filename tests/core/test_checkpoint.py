import os

import pytest
import torch

from vocalsep.core.checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)
from vocalsep.core.errors import CheckpointError


def make_checkpoint(**changes):
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    fields = dict(
        task="test-task",
        architecture="linear",
        model_config={"width": 3, "sizes": [1, 2]},
        task_config={"rate": 16000},
        state_dict=module.state_dict(),
        metadata={"licence": "CC0", "metrics": {"sdr": 1.5}},
    )
    fields.update(changes)
    return Checkpoint(**fields), module


def test_round_trip_keeps_everything(tmp_path):
    checkpoint, module = make_checkpoint(training_state={"step": 7})
    path = save_checkpoint(checkpoint, tmp_path / "sub" / "model.ckpt")
    loaded = load_checkpoint(path, task="test-task")
    for name in ("task", "architecture", "model_config", "task_config", "metadata"):
        assert getattr(loaded, name) == getattr(checkpoint, name)
    assert loaded.training_state == {"step": 7}
    assert loaded.format_version == FORMAT_VERSION
    fresh = torch.nn.Linear(3, 2)
    load_weights(fresh, loaded, path)
    for key, value in module.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)
    assert [p.name for p in tmp_path.joinpath("sub").iterdir()] == ["model.ckpt"]  # no temp left


def test_saved_file_gets_the_umask_permissions_like_any_file(tmp_path):
    # An exported model is shared (shipped in the package, copied to a server): it must not be
    # readable by its owner only, as a mkstemp temp file renamed into place would be.
    old = os.umask(0o022)
    try:
        path = save_checkpoint(make_checkpoint()[0], tmp_path / "model.ckpt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.ckpt")


@pytest.mark.parametrize("keep", [0, 10, 200, -50])
def test_truncated_file(tmp_path, keep):
    path = save_checkpoint(make_checkpoint()[0], tmp_path / "model.ckpt")
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.ckpt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_code_in_a_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"format": "vocalsep-checkpoint", "payload": Exploit()}, path)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_checkpoint(path)


def test_foreign_torch_file(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="not a vocalsep checkpoint"):
        load_checkpoint(path)


def test_newer_format_and_missing_fields(tmp_path):
    checkpoint, _ = make_checkpoint()
    payload = checkpoint.to_dict()
    torch.save({**payload, "format_version": FORMAT_VERSION + 1}, tmp_path / "new.ckpt")
    with pytest.raises(CheckpointError, match="upgrade"):
        load_checkpoint(tmp_path / "new.ckpt")
    del payload["state_dict"]
    torch.save(payload, tmp_path / "partial.ckpt")
    with pytest.raises(CheckpointError, match="missing state_dict"):
        load_checkpoint(tmp_path / "partial.ckpt")


def test_wrong_task(tmp_path):
    path = save_checkpoint(make_checkpoint()[0], tmp_path / "model.ckpt")
    with pytest.raises(CheckpointError, match="not a 'audio-separation'"):
        load_checkpoint(path, task="audio-separation")


def test_mismatched_weights(tmp_path):
    checkpoint, _ = make_checkpoint()
    with pytest.raises(CheckpointError, match="do not match"):
        load_weights(torch.nn.Linear(4, 2), checkpoint, "model.ckpt")
