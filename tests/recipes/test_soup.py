"""Weight averaging of checkpoints (recipes/synthetic/soup.py)."""

import pytest
import torch
from soup import average_checkpoints

from vocalsep.core.checkpoint import Checkpoint, save_checkpoint
from vocalsep.core.errors import CheckpointError


def write(tmp_path, name, seed, width=3, **changes):
    torch.manual_seed(seed)
    module = torch.nn.Sequential(torch.nn.Linear(width, 2), torch.nn.BatchNorm1d(2))
    module[1].running_mean.normal_()
    module[1].num_batches_tracked.fill_(seed + 10)
    fields = dict(
        task="test-task",
        architecture="mlp",
        model_config={"width": width, "dropout": 0.1 * seed},
        task_config={"rate": 16000},
        state_dict=module.state_dict(),
        metadata={"seed": seed},
    )
    fields.update(changes)
    return save_checkpoint(Checkpoint(**fields), tmp_path / name), module.state_dict()


def test_the_soup_is_the_weighted_mean_of_the_float_tensors(tmp_path):
    (a, wa), (b, wb), (c, wc) = (write(tmp_path, f"{s}.ckpt", s) for s in (1, 2, 3))
    uniform = average_checkpoints([a, b, c])
    weighted = average_checkpoints([a, b, c], [2, 1, 1])
    for name, tensor in uniform.state_dict.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (wa[name] + wb[name] + wc[name]) / 3, atol=1e-6)
            expected = (2 * wa[name] + wb[name] + wc[name]) / 4
            assert torch.allclose(weighted.state_dict[name], expected, atol=1e-6)
        else:  # the BatchNorm step counter: the first checkpoint's
            assert torch.equal(tensor, wa[name])
    assert not torch.allclose(uniform.state_dict["0.weight"], wa["0.weight"])  # can fail
    # Configs of the first; dropout (no weights) may differ; ingredients in the metadata.
    assert uniform.model_config == {"width": 3, "dropout": 0.1}
    assert uniform.metadata["seed"] == 1
    assert [item["weight"] for item in weighted.metadata["soup"]] == [0.5, 0.25, 0.25]
    assert [item["checkpoint"] for item in uniform.metadata["soup"]] == [str(a), str(b), str(c)]


def test_one_checkpoint_is_its_own_soup(tmp_path):
    a, wa = write(tmp_path, "a.ckpt", 1)
    soup = average_checkpoints([a])
    assert all(torch.equal(soup.state_dict[name], wa[name]) for name in wa)


def test_checkpoints_that_do_not_match_are_refused(tmp_path):
    a, _ = write(tmp_path, "a.ckpt", 1)
    wider, _ = write(tmp_path, "wide.ckpt", 2, width=4)
    other_stft, _ = write(tmp_path, "rate.ckpt", 2, task_config={"rate": 8000})
    with pytest.raises(CheckpointError, match="shape"):
        average_checkpoints([a, wider])
    with pytest.raises(CheckpointError, match="task_config"):
        average_checkpoints([a, other_stft])
    with pytest.raises(CheckpointError, match="weight"):
        average_checkpoints([a, a], [1])
    with pytest.raises(CheckpointError, match="at least one"):
        average_checkpoints([])
