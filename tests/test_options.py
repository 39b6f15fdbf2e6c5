"""The one options mechanism: every command's flags from its dataclass, one spelling with
hyphenated aliases, one-line errors, one gpu_ids default; the run and results layout."""

import argparse
from dataclasses import fields

import pytest

from affinegan import checkpoint as ckpt
from affinegan import layout
from affinegan.cli import main
from affinegan.cli.command_options import DemoOptions, ServeOptions, SynthOptions
from affinegan.cli.commands import COMMANDS, SCRIPTS
from affinegan.errors import AffineGANError
from affinegan.options import build_parser, parse


def test_hyphenated_aliases_and_underscores_agree() -> None:
    a = parse(ServeOptions, ["--max-upload-mb", "5", "--max-frames", "7"], "s", "")
    b = parse(ServeOptions, ["--max_upload_mb", "5", "--max_frames", "7"], "s", "")
    assert a == b and a.max_upload_mb == 5.0 and a.max_frames == 7


@pytest.mark.parametrize(
    "cls,argv,message",
    [
        (ServeOptions, ["--max_upload_mb", "0"], "--max_upload_mb 0.0: must be greater than 0"),
        (ServeOptions, ["--port", "70000"], "--port 70000: must be at most 65535"),
        (SynthOptions, ["--out", "x", "--clips", "0"], "--clips 0: must be at least 1"),
        (SynthOptions, ["--out", "x", "--min_frames", "9", "--max_frames", "8"], "--max_frames 8"),
        (DemoOptions, ["--size", "96"], "invalid choice: 96"),
        (DemoOptions, ["--preset", "vivid"], "--preset 'vivid'"),
        (SynthOptions, [], "required: --out"),
        (SynthOptions, ["--out", "x", "--clips", "many"], "invalid int value: 'many'"),
    ],
)
def test_bad_input_is_one_line(cls: type, argv: list[str], message: str) -> None:
    with pytest.raises(AffineGANError) as err:
        parse(cls, argv, "affinegan x", "")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_every_command_number_is_bounded_and_gpu_ids_has_one_default() -> None:
    for name, command in COMMANDS.items():
        for f in fields(command.options):
            if f.name == "gpu_ids":
                assert f.default == "0", name
        if name in ("train", "generate"):  # the original's flags, some accepted and unused
            continue
        for f in fields(command.options):
            if str(f.type).replace(" | None", "") in ("int", "float"):
                bounded = {"min", "max", "positive", "choices"} & set(f.metadata)
                assert bounded, f"affinegan {name} --{f.name} has no bounds"


def test_generate_defaults_are_data() -> None:
    """``affinegan generate`` is deterministic; the original's ``generate.py`` is not."""
    generate = COMMANDS["generate"]
    assert parse(generate.options, [], "affinegan generate", "", generate.defaults).eval
    assert not parse(generate.options, [], "generate.py", "").eval
    assert SCRIPTS["generate.py"] == "generate"


def test_every_command_has_help(capsys: pytest.CaptureFixture) -> None:
    for name, command in COMMANDS.items():
        help_text = build_parser(command.options, f"affinegan {name}", "").format_help()
        assert "--" in help_text or name in ("check",), name
    assert main([]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in COMMANDS)


def test_layout_names() -> None:
    assert layout.weight_path("run", "latest", "G_ema").name == "latest_net_G_ema.pth"
    assert layout.generator_file() == "latest_net_G.pth"
    match = layout.FRAME_RE.fullmatch(layout.frame_name("clip_1", 12))
    assert match and match["clip"] == "clip_1" and match["index"] == "12"
    folder = layout.results_folder("res", "exp", "test", "latest")
    assert folder.as_posix() == "res/exp/test_latest"
    assert layout.gif_path("res", "exp", "c", "5").as_posix() == "res/gifs/exp/c_5.gif"


def test_training_size_without_a_config_follows_the_unet_depth() -> None:
    assert ckpt.training_size({}, "unet_64") == 64
    assert ckpt.training_size({}, "unet_256") == 256
    assert ckpt.training_size({"fineSize": 128}, "unet_256") == 128


def test_train_help_lists_the_paper_the_recipe_and_few_more() -> None:
    """A flag is a promise: the measured dead ends left (docs/experiments.md), so ``train
    --help`` stays at most 65 flags, and none of the removed ones is among them."""
    from affinegan.config import REMOVED_OPTIONS

    command = COMMANDS["train"]
    parser = build_parser(command.options, "affinegan train", "", command.defaults)
    shown = [a for a in parser._actions if a.help != argparse.SUPPRESS and a.dest != "help"]
    assert len(shown) <= 65
    assert not {a.dest for a in shown} & set(REMOVED_OPTIONS)
