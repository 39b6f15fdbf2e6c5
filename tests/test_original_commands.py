"""The original README's commands, unchanged, on the sample clips (tiny sizes)."""

from pathlib import Path

import pytest
from tiny import TINY_FLAGS as TINY
from tiny import run_python

from affinegan.config import GenerateConfig, TrainConfig
from affinegan.errors import AffineGANError
from affinegan.generation.results import resolve_alphas
from affinegan.generation.video import read_frames
from affinegan.options import build_parser, from_args


@pytest.mark.slow
def test_train_generate_img2gif_on_examples(shared_dir, tmp_path):
    happy = str(shared_dir / "data" / "examples" / "happy")
    ck, res = str(tmp_path / "ck"), str(tmp_path / "res")
    where = ["--dataroot", happy, "--name", "happy", "--checkpoints_dir", ck]
    run_python("train.py", *where, *TINY, "--niter", "1", "--niter_decay", "0", "--display_id", "1")
    run_python("train.py", *where, *TINY, "--niter", "2", "--niter_decay", "0", "--continue_train")
    run_python("generate.py", *where, "--results_dir", res, "--eval", "--gpu_ids", "-1")
    images = Path(res) / "happy" / "test_latest" / "images"
    assert len(list(images.glob("vid_0067_fake_B_list*.png"))) == 20
    assert (Path(res) / "happy" / "test_latest" / "index.html").is_file()
    run_python("img2gif.py", "--exp_names", "happy", "--dataroot", happy, "--results_dir", res)
    assert len(read_frames(Path(res) / "gifs" / "happy" / "vid_0067_latest.gif")) == 20
    # any portrait: --align crops it around the face first (dlib, shipped models)
    photo = shared_dir / "data" / "examples" / "anger" / "train" / "img" / "vid_0001" / "0001.jpg"
    run_python(
        "-m",
        "affinegan",
        "generate",
        "--input",
        str(photo),
        "--align",
        "--name",
        "happy",
        "--checkpoints_dir",
        ck,
        "--results_dir",
        res,
        "--num_frames",
        "4",
        "--format",
        "gif",
        "--gpu_ids",
        "-1",
    )
    assert len(read_frames(Path(res) / "happy" / "test_latest" / "0001.gif")) == 4


@pytest.mark.slow
def test_no_patch_on_colour_clips_without_masks(shared_dir, tmp_path):
    where = [
        "--dataroot",
        str(shared_dir / "data" / "examples" / "closeeye"),
        "--name",
        "c",
        "--checkpoints_dir",
        str(tmp_path),
        *TINY,
        "--niter",
        "1",
        "--niter_decay",
        "0",
    ]
    proc = run_python("train.py", *where, code=2)
    assert "--no_patch" in proc.stderr.strip().splitlines()[-1]
    run_python("train.py", *where, "--no_patch")
    assert not (tmp_path / "c" / "latest_net_D_Patch.pth").exists()


def test_ignored_options_get_a_note(caplog):
    parser = build_parser(TrainConfig, "train.py", "")
    cfg = from_args(
        TrainConfig,
        parser,
        [
            "--dataroot",
            "d",
            "--display_port",
            "8097",
            "--lr_policy",
            "lambda",
            "--suffix",
            "{netG}",
        ],
    )
    assert cfg.name == "experiment_name_unet_256"
    assert "--display_port is accepted" in caplog.text and "--lr_policy" in caplog.text


@pytest.mark.parametrize(
    "argv,expected",
    [
        ([], [i * 0.05 for i in range(20)]),  # the original: 20 frames, peak never reached
        (["--interval", "0.25"], [0.0, 0.25, 0.5, 0.75]),
        (["--num_frames", "5"], [0.0, 0.25, 0.5, 0.75, 1.0]),
        (["--alphas", "0,0.3,1"], [0.0, 0.3, 1.0]),
        (["--num_frames", "5", "--curve", "there-and-back"], [0.0, 0.5, 1.0, 0.5, 0.0]),
    ],
)
def test_alpha_schedules(argv, expected):
    cfg = from_args(GenerateConfig, build_parser(GenerateConfig, "g", ""), argv)
    assert resolve_alphas(cfg) == pytest.approx(expected)


def test_bad_alphas():
    cfg = GenerateConfig(alphas="0,x")
    with pytest.raises(AffineGANError, match="--alphas"):
        resolve_alphas(cfg)
