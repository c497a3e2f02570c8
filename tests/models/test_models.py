"""pipeline/models.py: one resolver for model names. Each spelling (bundled:<name>, the old bare
names with their note, a folder, a hub id in the local cache) and the one-line errors. The hub
cache is a real huggingface_hub cache layout written into tmp_path (there is no network here)."""

from __future__ import annotations

import pytest

from pipeline import models
from pipeline.errors import UserError
from pipeline.models import ModelKind

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def fresh_notes(monkeypatch):
    """The deprecation note prints once per process: each test starts with none printed."""
    monkeypatch.setattr(models, "_noted", set())


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A local Hugging Face cache holding org/tiny at commit COMMIT (refs/main points there)."""
    import huggingface_hub.constants

    root = tmp_path / "hub"
    repo = root / "models--org--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root))
    return snapshot


def test_bundled_spelling_resolves_without_a_note(capsys):
    from pipeline.bundled_models import minilm_path

    found = models.resolve("bundled:minilm")
    assert found == models.ResolvedModel(
        ModelKind.BUNDLED, minilm_path(), "bundled:all-MiniLM-L6-v2"
    )
    assert capsys.readouterr().err == ""


def test_old_spelling_resolves_the_same_with_one_note(capsys):
    assert models.resolve("minilm") == models.resolve("bundled:minilm")
    models.resolve("minilm")
    err = capsys.readouterr().err
    assert err == "note: model name 'minilm' is deprecated; write 'bundled:minilm'\n"
    assert models.canonical("smollm2") == "bundled:smollm2"  # smollm2's own note, not converted
    assert capsys.readouterr().err.count("write 'bundled:smollm2'") == 1


def test_unknown_bundled_name_lists_the_known_ones():
    with pytest.raises(UserError, match=r"^bundled:gpt9: no such bundled model \(bundled models: "):
        models.check("bundled:gpt9")


def test_a_folder_resolves_to_itself(tiny_lm, monkeypatch):
    folder = tiny_lm.resolve()
    assert models.resolve(str(tiny_lm)) == models.ResolvedModel(
        ModelKind.FOLDER, folder, str(folder)
    )
    monkeypatch.chdir(tiny_lm.parent)
    assert models.model_path(f"./{tiny_lm.name}") == str(folder)


def test_folder_errors(tmp_path):
    with pytest.raises(UserError, match=r"^\./nowhere: model folder not found$"):
        models.resolve("./nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty: not a model folder \(no config.json\)$"):
        models.check(str(tmp_path / "empty"))


def test_a_hub_id_resolves_offline_from_the_cache(hub_cache):
    assert models.resolve("org/tiny") == models.ResolvedModel(ModelKind.HUB, hub_cache, "org/tiny")
    models.check("org/tiny")


def test_judges_pin_a_hub_model_by_its_revision(hub_cache):
    from pipeline.judging.backends.hf_common import resolve_model

    assert resolve_model("org/tiny", COMMIT) == (str(hub_cache), "org/tiny", COMMIT)


def test_judges_pin_a_bundled_model_by_its_weights():
    from pipeline.judging.backends.hf_common import resolve_model, weights_hash

    source, model_id, pin = resolve_model("bundled:minilm")
    assert (model_id, pin) == (
        "bundled:all-MiniLM-L6-v2",
        weights_hash(models.resolve(source).path),
    )


def test_a_hub_id_missing_from_the_cache_is_one_line(hub_cache):
    with pytest.raises(UserError) as error:
        models.resolve("org/absent")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("org/absent: not a model folder, and not in the local Hugging Face")
    assert str(hub_cache.parents[2]) in message  # names the cache it looked in
    with pytest.raises(UserError, match=r"^a/b/c: not a model folder, a hub id or one of "):
        models.resolve("a/b/c")


def test_cli_rejects_a_missing_hub_id_in_one_line_with_exit_2(cli, sqlite_url, hub_cache):
    from db.models import TrainingJob
    from db.session import session_scope

    code, out = cli("train", "reward", "--snapshot", "x", "--model", "org/absent")
    assert code == 2
    (line,) = out.splitlines()
    assert line.startswith("error: org/absent: not a model folder, and not in the local")
    assert "Traceback" not in out
    with session_scope() as session:
        assert session.query(TrainingJob).count() == 0  # nothing written


def test_cli_notes_the_old_spelling_of_the_judge_model(cli, sqlite_url, hub_cache):
    # The value model's folder is missing, so nothing starts; the judge was read before it.
    code, out = cli(
        "train", "ppo", "--snapshot", "x", "--judge-model", "smollm2", "--value-model", "./none"
    )
    assert code == 2
    assert out.splitlines() == [
        "note: model name 'smollm2' is deprecated; write 'bundled:smollm2'",
        "error: ./none: model folder not found",
    ]
