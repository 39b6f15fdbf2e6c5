"""Process set-up shared by training and inference (``affinegan.runtime``)."""

import subprocess
import sys

import pytest
import torch

from affinegan import distributed, runtime
from affinegan.errors import AffineGANError


def test_resolve_device_reads_gpu_ids():
    assert runtime.resolve_device("-1") == torch.device("cpu")
    assert runtime.resolve_device("") == torch.device("cpu")
    if not torch.cuda.is_available():  # a GPU id falls back to the CPU
        assert runtime.resolve_device("0") == torch.device("cpu")
    with pytest.raises(AffineGANError, match="--gpu_ids 'gpu0'"):
        runtime.resolve_device("gpu0")


def test_one_process_without_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with runtime.process("-1") as rt:
        assert rt.device == torch.device("cpu")
        assert rt.world == distributed.World() and rt.world.main and not rt.world.active


def test_set_threads():
    before = torch.get_num_threads()
    try:
        assert runtime.set_threads(0) == before
        assert runtime.set_threads(1) == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(AffineGANError, match="threads -1"):
        runtime.set_threads(-1)


@pytest.mark.slow
def test_inference_does_not_import_the_training_loop():
    code = (
        "import sys\n"
        "import affinegan.generate, affinegan.evaluate, affinegan.serve\n"
        "print('affinegan.train' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_importing_runtime_needs_no_torch():
    """``generate --backend onnxruntime`` sets up its process here without torch."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "from affinegan.runtime import keep_freed_memory\n"
        "keep_freed_memory()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
