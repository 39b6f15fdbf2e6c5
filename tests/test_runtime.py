"""Process set-up shared by training and inference (``affinegan.runtime``)."""

import subprocess
import sys

import pytest
import torch

from affinegan import runtime
from affinegan.errors import AffineGANError
from affinegan.training import distributed


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


def _stat(user: int, idle: int, iowait: int = 0, cpus: int = 2) -> str:
    """A /proc/stat reading: the summed cpu line, one line per core, and some other lines."""
    cores = "".join(f"cpu{i} 1 0 1 1 0 0 0 0 0 0\n" for i in range(cpus))
    return (
        f"cpu  {user} 5 {user // 10} {idle} {iowait} 0 3 0 7 0\n{cores}"
        "intr 12345 0 0\nctxt 999\nbtime 1700000000\nprocs_running 2\n"
    )


def test_idle_cores_from_two_proc_stat_readings():
    assert runtime.cpu_times(_stat(100, 900, 50, cpus=4)) == (950, 100 + 5 + 10 + 900 + 50 + 3, 4)
    # 0.2 s on 2 cores = 40 ticks at 100 Hz: all idle, then one core busy, then both
    assert runtime.idle_cores(_stat(1000, 500), _stat(1000, 540)) == pytest.approx(2.0)
    assert runtime.idle_cores(_stat(1000, 500), _stat(1020, 519, 1)) == pytest.approx(2 * 20 / 42)
    assert runtime.idle_cores(_stat(1000, 500), _stat(1040, 500)) < 0.1
    assert runtime.idle_cores(_stat(1000, 500), _stat(1000, 500)) == 2.0  # no tick: nothing ran
    with pytest.raises(ValueError):
        runtime.cpu_times("intr 1 2\n")


def test_thread_choice():
    choose = runtime.choose_threads
    assert choose(0, 2.0, 2) == (2, "2.0 of 2 cores idle at start")
    assert choose(0, 1.8, 2)[0] == 2  # a core idle 80% of the time counts
    assert choose(0, 1.6, 2)[0] == 1
    assert choose(0, 1.0, 2)[0] == 1  # one CPU hog on two cores: one thread
    assert choose(0, 0.0, 2)[0] == 1  # never fewer than one
    assert choose(0, 30.0, 8)[0] == 8  # at most the cores this process may use
    assert choose(3, 0.0, 2) == (3, "--torch_threads")  # the flag wins, even over the env
    assert choose(3, None, 2, env="1") == (3, "--torch_threads")
    assert choose(0, 2.0, 2, env="1") == (1, "OMP_NUM_THREADS")
    assert choose(0, 2.0, 2, env="junk")[0] == 2
    assert choose(0, None, 2) == (0, "torch's default (idle cores unknown)")
    with pytest.raises(AffineGANError, match="--torch_threads -1"):
        choose(-1, 2.0, 2)


def test_measure_idle_cores_reads_proc_stat_twice():
    readings = iter([_stat(1000, 500), _stat(1020, 520)])
    slept = []
    idle = runtime.measure_idle_cores(0.2, read=lambda: next(readings), sleep=slept.append)
    assert idle == pytest.approx(2 * 20 / 42) and slept == [0.2]  # user 20, system 2, idle 20

    def unreadable() -> str:
        raise OSError("no /proc here")

    assert runtime.measure_idle_cores(0.2, read=unreadable, sleep=slept.append) is None


def test_thread_policy_sets_torch_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert runtime.thread_policy(2) == 2  # the flag
        assert runtime.thread_policy(0) == 1  # the environment
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
        monkeypatch.setattr(runtime, "measure_idle_cores", lambda: 0.9)
        assert runtime.thread_policy(0) == 1  # one core busy: one thread
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_inference_does_not_import_the_training_loop():
    code = (
        "import sys\n"
        "import affinegan.generation.generate, affinegan.evaluation.evaluate\n"
        "import affinegan.serving.serve, affinegan.export.onnx_export\n"
        "loop = ('affinegan.training.train', 'affinegan.core.step')\n"
        "print(any(m in sys.modules for m in loop))\n"
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
