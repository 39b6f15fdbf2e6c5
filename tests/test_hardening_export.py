"""Issue 31: an export folder is untrusted input, and export / generate take hostile paths.

Every hostile ``model.json`` or graph gives frames or one ``AffineGANError`` line, never a
traceback or an allocation the graphs do not need; nothing outside the folder is read through
it; the page inserts no untrusted HTML; an interrupted export leaves the old folder or none.
"""

import errno
import hashlib
import json
import re
import resource
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from tiny import untrained_run

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from affinegan.cli import main  # noqa: E402
from affinegan.data.cartoon import render_face  # noqa: E402
from affinegan.errors import AffineGANError  # noqa: E402
from affinegan.export import onnx_export as export_module  # noqa: E402
from affinegan.export.manifest import MAX_BYTES, MAX_EXPRESSIONS, MAX_IMAGE_SIZE  # noqa: E402
from affinegan.export.onnx_export import NPM_FILES, WEB_ASSETS, export  # noqa: E402
from affinegan.export.onnx_runtime import OnnxGenerator, load_face, require  # noqa: E402
from affinegan.files import writable_folder  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs ``s`` (one expression), ``n8`` (ngf 8) and ``m`` (two expressions), each exported
    to ``<run>/onnx``, a face and stand-ins for the npm files the page copies."""
    root = tmp_path_factory.mktemp("hostile")
    for name, kw in (("s", {}), ("n8", {"ngf": 8}), ("m", {"expressions": ("blink", "smile")})):
        run = untrained_run(root / "ck" / name, **kw)
        export(run, run / "onnx")
    Image.fromarray(render_face(11, "smile", 0.0, 64)[0]).save(root / "face.png")
    for rel in NPM_FILES:
        (root / "nm" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "nm" / rel).write_text("// stand-in\n")
    return root


def _copy(root: Path, tmp: Path, name: str = "s") -> Path:
    out = tmp / f"export_{name}"
    shutil.copytree(root / "ck" / name / "onnx", out)
    return out


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "model.json").read_text())


def _write(folder: Path, manifest: object) -> None:
    (folder / "model.json").write_text(json.dumps(manifest))


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert text and "\n" not in text and "Traceback" not in text
    return text


def _cli_error(capsys: pytest.CaptureFixture, argv: list) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("image_size", 100000, "'image_size' 100000 is not a whole number from 1 to"),
        ("image_size", 0, "'image_size' 0"),
        ("image_size", -5, "'image_size' -5"),
        ("image_size", 1.5, "'image_size' 1.5"),
        ("image_size", "64", "'image_size' '64'"),
        ("image_size", True, "'image_size' True"),
        ("image_size", None, "'image_size' None"),
        ("image_size", 128, "encoder input"),  # in bounds, but not the graphs' size
        ("expressions", [], "'expressions' must list 1 to"),
        ("expressions", [f"e{i}" for i in range(MAX_EXPRESSIONS + 1)], "'expressions'"),
        ("expressions", [1], "'expressions'"),
        ("expressions", "smile", "'expressions'"),
        ("expressions", ["a", "b"], "decoder alpha: [1], expected [2]"),  # graphs of one
        ("variants", ["fp32"], "'variants' must map"),
        ("variants", {"fp32": "encode.onnx"}, "'variants' must map"),
        ("variants", {}, "no fp32 graphs (exported: none)"),
        ("format_version", None, "format version None"),
        ("format_version", 2, "format version 2"),
        ("name", "../../escape", "'name' '../../escape' is not a model name"),
        ("name", 7, "is not a model name"),
    ],
)
def test_model_json_values_are_checked_before_use(
    root: Path, tmp_path: Path, key: str, value: object, message: str
) -> None:
    """Items 1 and 5: bounds first, then the graphs must agree with the file."""
    folder = _copy(root, tmp_path)
    manifest = _manifest(folder)
    manifest[key] = value
    _write(folder, manifest)
    with pytest.raises(AffineGANError) as err:
        OnnxGenerator.load(folder)
    text = _one_line(err)
    assert message in text and str(folder / "model.json") in text


@pytest.mark.parametrize(
    "content,message",
    [
        (b"{not json", "not readable JSON"),
        (b"", "not readable JSON"),
        (b"\xff\xfe", "not readable JSON"),
        (b"[1, 2]", "expected a JSON object, found list"),
        (b"{}" + b" " * MAX_BYTES, "larger than 1024 kB"),
    ],
)
def test_a_broken_model_json_is_one_line(
    root: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    folder = _copy(root, tmp_path)
    (folder / "model.json").write_bytes(content)
    with pytest.raises(AffineGANError) as err:
        OnnxGenerator.load(folder)
    assert message in _one_line(err)


@pytest.mark.parametrize("where", ["parent", "absolute", "symlink"])
def test_graphs_outside_the_export_folder_are_refused(
    root: Path, tmp_path: Path, where: str
) -> None:
    """Item 2: ../, an absolute path to another model's graph, a link out of the folder."""
    folder = _copy(root, tmp_path)
    other = root / "ck" / "s" / "onnx" / "decode.onnx"  # a good graph, elsewhere
    name = {"parent": "../../../../../../../../etc/passwd", "absolute": str(other)}.get(where)
    if where == "symlink":
        (folder / "link.onnx").symlink_to(other)
        name = "link.onnx"
    manifest = _manifest(folder)
    manifest["variants"]["fp32"]["decode"] = name
    _write(folder, manifest)
    with pytest.raises(AffineGANError) as err:
        OnnxGenerator.load(folder)
    assert "is outside the export folder; refusing to load it" in _one_line(err)


def test_a_model_json_linked_from_elsewhere_is_refused(root: Path, tmp_path: Path) -> None:
    """Item 2: nothing outside the folder is read through it, model.json included."""
    folder = _copy(root, tmp_path)
    (folder / "model.json").unlink()
    (folder / "model.json").symlink_to(root / "ck" / "s" / "onnx" / "model.json")
    with pytest.raises(AffineGANError) as err:
        OnnxGenerator.load(folder)
    assert "model.json (a link) is outside the export folder" in _one_line(err)


@pytest.mark.parametrize(
    "damage,message",
    [
        ("truncate", "not a readable ONNX graph"),
        ("empty", "not a readable ONNX graph"),
        ("ngf8", "decoder codes"),
        ("multi decoder", "decoder alpha: [2], expected [1]"),
        ("multi encoder", "decoder codes"),
        ("same file", "the encode and decode graphs are one file"),
    ],
)
def test_broken_or_foreign_graphs_are_one_line(
    root: Path, tmp_path: Path, damage: str, message: str
) -> None:
    """Item 5: a cut or empty graph, graphs of another ngf or of a multi-expression model."""
    folder = _copy(root, tmp_path)
    decode = folder / "decode.onnx"
    if damage == "truncate":
        decode.write_bytes(decode.read_bytes()[: decode.stat().st_size // 2])
    elif damage == "empty":
        decode.write_bytes(b"")
    elif damage == "same file":
        manifest = _manifest(folder)
        manifest["variants"]["fp32"]["decode"] = "encode.onnx"
        _write(folder, manifest)
    else:
        src = {"ngf8": "n8/onnx/decode.onnx", "multi decoder": "m/onnx/decode.onnx"}
        src["multi encoder"] = "m/onnx/encode.onnx"
        target = folder / Path(src[damage]).name
        shutil.copyfile(root / "ck" / src[damage], target)
    with pytest.raises(AffineGANError) as err:
        OnnxGenerator.load(folder)
    assert message in _one_line(err)


def _containers(inner: st.SearchStrategy) -> st.SearchStrategy:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    _containers,
    max_leaves=12,
)
FIELDS = ("format_version", "name", "image_size", "expressions", "variants", "encode", "decode")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    whole=st.one_of(st.none(), JSON),
    changes=st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=3),
    big=st.sampled_from([0, 1, 64, 2**31, 10**300]),
)
def test_any_model_json_gives_frames_or_one_line(
    root: Path, tmp_path: Path, whole: object, changes: dict, big: int
) -> None:
    """The property of the issue's targets: any JSON value, or the real file with fields
    replaced by any JSON (numbers up to 10^300), gives frames of the graphs' own size or one
    ``AffineGANError`` line, and the process grows by no more than the model needs."""
    folder = tmp_path / "case"
    if not folder.is_dir():
        shutil.copytree(root / "ck" / "s" / "onnx", folder)
    manifest = _manifest(root / "ck" / "s" / "onnx")
    value = whole if whole is not None else {**manifest, **changes}
    if isinstance(value, dict) and big:
        value = {**value, "image_size": big} if "image_size" in changes else value
    _write(folder, value)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        gen = OnnxGenerator.load(folder)
    except AffineGANError as err:
        assert str(err) and "\n" not in str(err)
    else:
        assert gen.size == 64 and len(gen.manifest["expressions"]) == 1
        frames = gen.animate(load_face(root / "face.png", gen.size), [0.0, 1.0])
        assert frames.shape == (2, 64, 64, 3)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
    assert grown_mb < 500


def test_the_page_inserts_names_as_text_and_has_a_tight_policy() -> None:
    """Item 3: expression names come from model.json, which travels with a shared export."""
    app = (WEB_ASSETS / "app.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", app)
    html = (WEB_ASSETS / "index.html").read_text()
    policy = re.search(r'Content-Security-Policy"\s+content="([^"]+)"', html).group(1)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["base-uri"] == "'none'" and directives["form-action"] == "'none'"
    assert all("*" not in v and "http" not in v for v in directives.values())


def test_a_published_page_carries_no_local_path(root: Path, tmp_path: Path) -> None:
    """Item 4: the face the graphs were checked on is named, not located."""
    face = (root / "face.png").resolve()
    report = export(
        root / "ck" / "s", tmp_path / "out", face=face, web_dir=tmp_path / "page",
        node_modules=root / "nm",
    )  # fmt: skip
    for path in (tmp_path / "out" / "model.json", tmp_path / "page" / "model" / "model.json"):
        text = path.read_text()
        assert str(face.parent) not in text and str(tmp_path) not in text
        assert json.loads(text)["checked_on"] == "face.png"
    assert report.face == "face.png"


def test_output_paths_that_cannot_be_written_are_one_line(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Item 6: a file where a folder goes, for each command and backend."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ck = ["--checkpoints_dir", root / "ck", "--name", "s"]
    face = ["--input", root / "face.png", "--num_frames", "2", "--gpu_ids", "-1"]
    assert "--out" in _cli_error(capsys, ["export", *ck, "--out", blocker])
    web = ["--web", blocker, "--node_modules", root / "nm"]
    assert "--web" in _cli_error(capsys, ["export", *ck, "--out", tmp_path / "o", *web])
    for backend in ("pytorch", "onnxruntime"):
        argv = ["generate", *ck, *face, "--results_dir", blocker, "--backend", backend]
        assert "--results_dir" in _cli_error(capsys, argv)
    assert blocker.read_text() == "x"


def test_a_read_only_folder_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 6: the tests run as root, where permissions do not stop a write; a read-only disk
    is simulated where the write is tried."""

    def refuse(self: Path, *args: object, **kw: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "touch", refuse)
    with pytest.raises(AffineGANError) as err:
        writable_folder(tmp_path / "out", "--results_dir")
    assert "cannot write there (Read-only file system)" in _one_line(err)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("existing", [False, True])
def test_an_interrupted_export_leaves_the_old_folder_or_none(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    """Item 7: Ctrl-C after the graphs are written, before model.json."""
    out = tmp_path / "onnx"
    if existing:
        shutil.copytree(root / "ck" / "n8" / "onnx", out)
    before = _digests(out) if existing else None

    def interrupt(*args: object, **kw: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "_write_variants", interrupt)
    with pytest.raises(KeyboardInterrupt):
        export(root / "ck" / "s", out)
    assert (_digests(out) if out.exists() else None) == before
    assert [p.name for p in tmp_path.iterdir()] == (["onnx"] if existing else [])


def test_a_re_export_replaces_the_whole_folder(root: Path, tmp_path: Path) -> None:
    out = shutil.copytree(root / "ck" / "n8" / "onnx", tmp_path / "onnx")
    (out / "decode.int8.onnx").write_bytes(b"stale")
    export(root / "ck" / "s", out)
    assert sorted(p.name for p in out.iterdir()) == ["decode.onnx", "encode.onnx", "model.json"]
    assert OnnxGenerator.load(out).manifest["name"] == "s"


def test_ctrl_c_during_an_import_stays_an_interrupt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 8: a C extension can turn the interrupt into an ImportError; that is not "missing"."""

    class Interrupted:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "onnxruntime_fake":
                try:
                    raise KeyboardInterrupt
                except KeyboardInterrupt as err:
                    raise ImportError("numpy.core.multiarray failed to import") from err

    monkeypatch.setattr(sys, "meta_path", [Interrupted(), *sys.meta_path])
    with pytest.raises(KeyboardInterrupt):
        require("onnxruntime_fake")
    with pytest.raises(AffineGANError, match=r"this needs no_such_module: pip install"):
        require("no_such_module")


def test_the_web_page_never_replaces_the_users_files(root: Path, tmp_path: Path) -> None:
    """Item 12: a folder with the user's own index.html is refused; an earlier page is replaced."""
    page = tmp_path / "site"
    page.mkdir()
    (page / "index.html").write_text("<p>mine</p>")
    kw = {"web_dir": page, "node_modules": root / "nm"}
    with pytest.raises(AffineGANError) as err:
        export(root / "ck" / "s", tmp_path / "out", **kw)
    assert "holds other files" in _one_line(err) and "--web" in str(err.value)
    assert (page / "index.html").read_text() == "<p>mine</p>" and not (tmp_path / "out").exists()
    export(
        root / "ck" / "s",
        tmp_path / "out",
        web_dir=tmp_path / "page",
        node_modules=kw["node_modules"],
    )
    export(
        root / "ck" / "m",
        tmp_path / "out",
        web_dir=tmp_path / "page",
        node_modules=kw["node_modules"],
    )
    assert _manifest(tmp_path / "page" / "model")["expressions"] == ["blink", "smile"]


@pytest.mark.parametrize("web", ["out", "out/page", "."])
def test_the_page_and_the_graphs_go_to_separate_folders(
    root: Path, tmp_path: Path, web: str
) -> None:
    """Each folder is swapped in whole: one inside the other would lose it."""
    with pytest.raises(AffineGANError) as err:
        export(
            root / "ck" / "s", tmp_path / "out", web_dir=tmp_path / web, node_modules=root / "nm"
        )
    assert "choose a folder apart from --out" in _one_line(err)


def test_onnx_results_are_filed_under_the_exported_model(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Item 12: --name s1 with another model's export is refused; no --name takes its name."""
    argv = ["generate", "--backend", "onnxruntime", "--onnx_dir", root / "ck" / "m" / "onnx"]
    argv += ["--input", root / "face.png", "--num_frames", "2", "--results_dir", tmp_path]
    assert "pass --name m" in _cli_error(capsys, [*argv, "--name", "s1"])
    assert main([str(a) for a in argv]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_the_onnx_backend_names_onnx_dir_when_the_export_is_elsewhere(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Also: after `export --out DIR`, the run folder has no onnx/; say --onnx_dir DIR."""
    run = shutil.copytree(
        root / "ck" / "s", tmp_path / "ck" / "s", ignore=shutil.ignore_patterns("onnx")
    )
    export(run, tmp_path / "elsewhere")
    argv = ["generate", "--backend", "onnxruntime", "--checkpoints_dir", tmp_path / "ck"]
    argv += ["--name", "s", "--input", root / "face.png", "--results_dir", tmp_path / "r"]
    assert "pass --onnx_dir with the folder `affinegan export` wrote" in _cli_error(capsys, argv)


def test_the_torch_road_still_matches(root: Path) -> None:
    """The checks refuse nothing a real export holds: the frames are PyTorch's."""
    from affinegan.generation.generate import animate, load_generator, set_mode

    model = load_generator(root / "ck" / "s")
    set_mode(model.G, dropout=False)
    x = load_face(root / "face.png", 64)
    ours = OnnxGenerator.load(root / "ck" / "s" / "onnx").animate(x, [0.0, 0.5]).astype(int)
    ref = animate(model.G, torch.from_numpy(x[0]), [0.0, 0.5]).astype(int)
    assert np.abs(ours - ref).max() <= 1
    assert MAX_IMAGE_SIZE >= 256  # the largest trained size fits


@pytest.mark.slow
@pytest.mark.browser
def test_hostile_expression_names_reach_the_page_as_text(root: Path, tmp_path: Path) -> None:
    """Item 3 in a browser: markup in a name stays characters; nothing is created from it."""
    pytest.importorskip("playwright.sync_api")
    from test_export import NODE_MODULES, page_with_photo

    if not all((NODE_MODULES / f).is_file() for f in NPM_FILES):
        pytest.skip("onnxruntime-web not installed: npm ci --prefix web (needs Node)")
    names = ['<img src=x onerror="window.pwned=1">', '"><form action=//x><button>go']
    export(root / "ck" / "m", tmp_path / "onnx", expressions=names, web_dir=tmp_path / "page")
    with page_with_photo(tmp_path / "page", root / "face.png") as (page, blocked, errors):
        assert page.evaluate("window.affinegan.expressions()") == names
        assert (
            page.evaluate(
                "document.querySelectorAll('#sliders :not(label, input, output), form').length"
            )
            == 0
        )
        assert page.evaluate("window.pwned") is None
        labels = page.evaluate(
            "Array.from(document.querySelectorAll('#sliders label'), l => l.textContent)"
        )
        assert [label.split(" 0.00")[0].strip() for label in labels] == names
        assert blocked == [] and errors == []
