"""Argilla sync against a REAL local argilla-server (pipeline/argilla_server), plus fast unit
tests of the record building and the retry policy that need no server.

The server comes from the test command (scripts/test.sh exports RLAIF_TEST_ARGILLA_URL and the
keys) or is started here once per session. Tests marked `argilla` need it; in CI a server that
does not start fails them instead of skipping. The tests read Argilla back over its REST API
(httpx), not through our module, so that a bug in pipeline.argilla.sync cannot hide itself.
"""

from __future__ import annotations

import os
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from db.models import HumanLabel, LabelAudit, SyncRun
from pipeline.argilla.config import ArgillaConfig
from tests.helpers.factories import judge_pair, label_pair, make_judge, make_pair, make_pairs

# --- the server ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory) -> dict[str, str]:
    url = os.environ.get("RLAIF_TEST_ARGILLA_URL")
    if url:
        yield {
            "url": url,
            "api_key": os.environ["RLAIF_TEST_ARGILLA_API_KEY"],
            "annotator_key": os.environ["RLAIF_TEST_ARGILLA_ANNOTATOR_API_KEY"],
            "annotator": os.environ.get("RLAIF_TEST_ARGILLA_ANNOTATOR", "annotator"),
        }
        return
    from pipeline.argilla import local_server as manager

    home = tmp_path_factory.mktemp("argilla-server")
    try:
        info = manager.start(home, manager.free_port())
    except Exception as error:  # noqa: BLE001 (any failure to start decides skip vs fail)
        if os.environ.get("CI"):
            pytest.fail(f"the local Argilla server did not start: {error}")
        pytest.skip(f"no local Argilla server ({error})")
    yield {
        "url": info.url,
        "api_key": info.owner_api_key,
        "annotator_key": info.annotator_api_key,
        "annotator": info.annotator_username,
    }
    manager.stop(home)


@pytest.fixture
def config(argilla_server, db_url, monkeypatch) -> ArgillaConfig:
    """A fresh dataset per test, so that tests never see each other's records."""
    monkeypatch.setenv("ARGILLA_API_URL", argilla_server["url"])
    monkeypatch.setenv("ARGILLA_API_KEY", argilla_server["api_key"])
    return ArgillaConfig.from_env(dataset=f"t-{uuid.uuid4().hex[:10]}", workspace="rlaif")


def rest(server: dict[str, str], key: str = "api_key") -> httpx.Client:
    return httpx.Client(
        base_url=server["url"] + "/api/v1", headers={"X-Argilla-Api-Key": server[key]}, timeout=30
    )


def dataset_id(server, name: str) -> str:
    with rest(server) as client:
        items = client.get("/me/datasets").raise_for_status().json()["items"]
    return next(d["id"] for d in items if d["name"] == name)


def records_by_external_id(server, name: str) -> dict[str, dict]:
    with rest(server) as client:
        body = (
            client.get(
                f"/datasets/{dataset_id(server, name)}/records",
                params={"include": ["suggestions", "responses"], "limit": 1000},
            )
            .raise_for_status()
            .json()
        )
    assert body["total"] == len(body["items"])
    return {r["external_id"]: r for r in body["items"]}


def answer(server, record: dict, label: str, status: str = "submitted", note: str | None = None):
    """What an annotator does in the Argilla UI: a response over REST with their own key."""
    values = {"preference": {"value": label}}
    if note:
        values["note"] = {"value": note}
    with rest(server, "annotator_key") as client:
        return (
            client.post(
                f"/records/{record['id']}/responses", json={"values": values, "status": status}
            )
            .raise_for_status()
            .json()
        )


def seed(session, n: int = 3):
    pairs = make_pairs(session, n)
    judge = make_judge(session, "judge-v1")
    judge_pair(session, judge, pairs[0], "A", confidence=0.9)
    judge_pair(session, judge, pairs[1], "B", confidence=0.65, swap_inconsistent=True)
    session.commit()
    return pairs, judge


# --- against the server -------------------------------------------------------------------------


@pytest.mark.argilla
def test_push_carries_suggestion_score_agent_and_metadata(config, argilla_server, session):
    from pipeline.argilla import sync

    pairs, _ = seed(session)
    result = sync.push(config)
    assert (result.pushed, result.with_suggestion, result.judge) == (3, 2, "judge-v1")

    records = records_by_external_id(argilla_server, config.dataset)
    assert set(records) == {f"pair-{p.id}" for p in pairs}
    first, second, unjudged = (records[f"pair-{p.id}"] for p in pairs)
    assert first["fields"] == {
        "prompt": "Which is better?",
        "response_a": "p0 answer A",
        "response_b": "p0 answer B",
    }
    [suggestion] = first["suggestions"]
    assert (suggestion["value"], suggestion["score"], suggestion["agent"]) == ("A", 0.9, "judge-v1")
    assert first["metadata"] == {
        "judge": "judge-v1",
        "confidence": 0.9,
        "swap_inconsistent": "no",
        "source": "test",
        "queue_reason": "low_confidence",
    }
    [suggestion] = second["suggestions"]
    assert (suggestion["value"], suggestion["score"]) == ("B", 0.65)
    assert second["metadata"]["swap_inconsistent"] == "yes"
    assert second["metadata"]["queue_reason"] == "swap_inconsistent"
    assert unjudged["suggestions"] == []
    assert unjudged["metadata"]["queue_reason"] == "unjudged"
    assert "confidence" not in unjudged["metadata"]

    # Our search engine answers the filters the SDK docs show (score and metadata).
    with rest(argilla_server) as client:
        found = (
            client.post(
                f"/datasets/{dataset_id(argilla_server, config.dataset)}/records/search",
                json={
                    "filters": {
                        "and": [
                            {
                                "type": "range",
                                "scope": {
                                    "entity": "suggestion",
                                    "question": "preference",
                                    "property": "score",
                                },
                                "le": 0.7,
                            },
                            {
                                "type": "terms",
                                "scope": {"entity": "metadata", "metadata_property": "judge"},
                                "values": ["judge-v1"],
                            },
                        ]
                    }
                },
            )
            .raise_for_status()
            .json()
        )
    assert [item["record"]["external_id"] for item in found["items"]] == [f"pair-{pairs[1].id}"]
    with session.get_bind().connect() as connection:
        runs = connection.execute(select(SyncRun.direction, SyncRun.status, SyncRun.pushed)).all()
    assert runs == [("push", "ok", 3)]


@pytest.mark.argilla
def test_push_again_sends_only_what_changed_and_updates_in_place(config, argilla_server, session):
    from pipeline.argilla import sync

    pairs, judge = seed(session)
    assert sync.push(config).pushed == 3
    again = sync.push(config)
    assert (again.pushed, again.unchanged) == (0, 3)  # nothing changed: nothing sent
    judge_pair(session, judge, pairs[0], "B", confidence=0.8)  # the judge was re-run
    label_pair(session, pairs[2], "alice", "tie")  # reviewed: its queue_reason changes
    session.commit()
    changed = sync.push(config)
    assert (changed.pushed, changed.unchanged, changed.with_suggestion) == (2, 1, 1)

    records = records_by_external_id(argilla_server, config.dataset)
    assert len(records) == 3
    [suggestion] = records[f"pair-{pairs[0].id}"]["suggestions"]
    assert (suggestion["value"], suggestion["score"]) == ("B", 0.8)
    assert records[f"pair-{pairs[0].id}"]["metadata"]["confidence"] == 0.8
    assert records[f"pair-{pairs[2].id}"]["metadata"]["queue_reason"] == "reviewed"
    assert sync.push(config, full=True).pushed == 3

    # Records deleted in Argilla behind our back: the next push notices and sends everything.
    with rest(argilla_server) as client:
        client.request(
            "DELETE",
            f"/datasets/{dataset_id(argilla_server, config.dataset)}/records",
            params={"ids": records[f"pair-{pairs[1].id}"]["id"]},
        ).raise_for_status()
    assert len(records_by_external_id(argilla_server, config.dataset)) == 2
    assert sync.push(config).pushed == 3
    assert len(records_by_external_id(argilla_server, config.dataset)) == 3


@pytest.mark.argilla
def test_only_queue_skips_reviewed_pairs(config, argilla_server, session):
    from pipeline.argilla import sync

    pairs, _ = seed(session)
    label_pair(session, pairs[2], "alice", "tie")
    session.commit()
    assert sync.push(config, only_queue=True).pushed == 2
    assert set(records_by_external_id(argilla_server, config.dataset)) == {
        f"pair-{pairs[0].id}",
        f"pair-{pairs[1].id}",
    }


@pytest.mark.argilla
def test_pull_submitted_response_becomes_human_label_once(config, argilla_server, session):
    from pipeline.argilla import sync

    pairs, _ = seed(session)
    sync.push(config)
    records = records_by_external_id(argilla_server, config.dataset)
    answer(argilla_server, records[f"pair-{pairs[0].id}"], "B", note="A is rude")
    answer(argilla_server, records[f"pair-{pairs[1].id}"], "A", status="draft")
    answer(argilla_server, records[f"pair-{pairs[2].id}"], "tie", status="discarded")

    result = sync.pull(config)
    assert (result.labels_new, result.labels_changed, result.ignored) == (1, 0, 2)
    session.expire_all()
    labels = session.execute(
        select(
            HumanLabel.pair_id,
            HumanLabel.annotator,
            HumanLabel.label,
            HumanLabel.source,
            HumanLabel.note,
        )
    ).all()
    assert labels == [(pairs[0].id, argilla_server["annotator"], "B", "argilla", "A is rude")]

    again = sync.pull(config)  # idempotent: nothing new, no new audit rows
    assert (again.labels_new, again.labels_changed) == (0, 0)
    assert session.scalar(select(func.count()).select_from(HumanLabel)) == 1
    assert (
        session.scalar(
            select(func.count()).select_from(LabelAudit).where(LabelAudit.kind == "human")
        )
        == 1
    )


@pytest.mark.argilla
def test_answer_discarded_after_submitting_withdraws_the_label(config, argilla_server, session):
    from db.models import Pair
    from pipeline.argilla import sync

    pairs, _ = seed(session)
    annotator = argilla_server["annotator"]
    label_pair(session, pairs[1], annotator, "B")  # the same person, in our app
    session.commit()
    sync.push(config)
    records = records_by_external_id(argilla_server, config.dataset)
    response = answer(argilla_server, records[f"pair-{pairs[0].id}"], "A")
    answer(argilla_server, records[f"pair-{pairs[1].id}"], "A", status="discarded")
    first = sync.pull(config)
    assert (first.labels_new, first.labels_withdrawn) == (1, 0)  # the app label is not Argilla's
    with rest(argilla_server, "annotator_key") as client:
        client.put(
            f"/responses/{response['id']}",
            json={"values": {"preference": {"value": "A"}}, "status": "discarded"},
        ).raise_for_status()

    result = sync.pull(config)
    assert (result.labels_new, result.labels_changed, result.labels_withdrawn) == (0, 0, 1)
    session.expire_all()
    remaining = session.execute(select(HumanLabel.pair_id, HumanLabel.source)).all()
    assert remaining == [(pairs[1].id, "app")]
    assert session.get(Pair, pairs[0].id).human_label_count == 0  # queue state refreshed
    audit = session.execute(
        select(LabelAudit.old_value, LabelAudit.new_value, LabelAudit.reason)
        .where(LabelAudit.pair_id == pairs[0].id)
        .order_by(LabelAudit.id)
    ).all()
    assert audit == [
        (None, "A", "answered in Argilla"),
        ("A", None, "withdrawn in Argilla (discarded)"),
    ]
    assert sync.pull(config).labels_withdrawn == 0  # idempotent


@pytest.mark.argilla
def test_changed_response_is_an_audited_label_change(config, argilla_server, session):
    from pipeline.argilla import sync

    pairs, _ = seed(session)
    sync.push(config)
    record = records_by_external_id(argilla_server, config.dataset)[f"pair-{pairs[0].id}"]
    response = answer(argilla_server, record, "A")
    sync.pull(config)
    with rest(argilla_server, "annotator_key") as client:
        client.put(
            f"/responses/{response['id']}",
            json={"values": {"preference": {"value": "tie"}}, "status": "submitted"},
        ).raise_for_status()

    result = sync.sync(config)
    assert (result.labels_new, result.labels_changed) == (0, 1)
    session.expire_all()
    assert session.scalar(select(HumanLabel.label)) == "tie"
    audit = session.execute(
        select(LabelAudit.actor, LabelAudit.old_value, LabelAudit.new_value, LabelAudit.reason)
        .where(LabelAudit.kind == "human")
        .order_by(LabelAudit.id)
    ).all()
    annotator = argilla_server["annotator"]
    assert audit == [
        (annotator, None, "A", "answered in Argilla"),
        (annotator, "A", "tie", "changed in Argilla"),
    ]


@pytest.mark.argilla
def test_server_down_is_a_clear_error_and_the_next_sync_catches_up(
    config, argilla_server, session, cli, monkeypatch
):
    from dataclasses import replace

    from pipeline.argilla import sync
    from pipeline.argilla.connection import ArgillaUnavailable
    from pipeline.argilla.local_server import free_port

    pairs, _ = seed(session)
    label_pair(session, pairs[2], "alice", "tie")
    session.commit()
    down = replace(config, api_url=f"http://127.0.0.1:{free_port()}", retries=2, backoff_s=0.01)
    with pytest.raises(ArgillaUnavailable, match="is unreachable") as error:
        sync.sync(down)
    assert "Nothing was lost" in str(error.value)

    monkeypatch.setenv("ARGILLA_API_URL", down.api_url)
    code, out = cli("argilla", "push", "--dataset", config.dataset)
    assert code == 2 and out.startswith("error: Argilla at http://127.0.0.1:")

    session.expire_all()
    runs = session.execute(select(SyncRun.direction, SyncRun.status, SyncRun.error)).all()
    assert [(d, s) for d, s, _ in runs] == [("sync", "failed"), ("push", "failed")]
    assert all("unreachable" in e for _, _, e in runs)
    assert session.scalar(select(func.count()).select_from(HumanLabel)) == 1  # nothing lost

    result = sync.sync(config)  # the server is back: everything goes over
    assert result.pushed == 3
    assert len(records_by_external_id(argilla_server, config.dataset)) == 3


# --- no server needed ---------------------------------------------------------------------------


def test_record_ids_round_trip():
    from pipeline.argilla.records import pair_id_of, record_id

    assert record_id(42) == "pair-42"
    assert pair_id_of("pair-42") == 42
    assert (
        pair_id_of("pair-x") is None and pair_id_of("other-1") is None and pair_id_of(None) is None
    )


def test_build_record_clamps_score_and_skips_invalid_labels(session):
    from pipeline.argilla.records import build_record

    pairs = make_pairs(session, 2)
    judge = make_judge(session)
    judge_pair(session, judge, pairs[0], "A", confidence=1.2)  # out of range from an import
    judge_pair(session, judge, pairs[1], "invalid", confidence=0.0, status="invalid")
    session.commit()
    from db.models import Judgment

    judgments = {j.pair_id: j for j in session.scalars(select(Judgment))}
    record = build_record(pairs[0], judgments[pairs[0].id], "judge-1", required=1)
    assert [(s.value, s.score, s.agent) for s in record.suggestions] == [("A", 1.0, "judge-1")]
    invalid = build_record(pairs[1], judgments[pairs[1].id], "judge-1", required=1)
    assert len(invalid.suggestions) == 0
    assert invalid.metadata["confidence"] == 0.0


def test_retries_back_off_then_give_up(monkeypatch):
    from pipeline.argilla import connection

    sleeps: list[float] = []
    monkeypatch.setattr(connection.time, "sleep", sleeps.append)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise httpx.ConnectError("refused")
        return "ok"

    config = ArgillaConfig(api_url="http://x", api_key="k", retries=4, backoff_s=0.5)
    assert connection.with_retries(flaky, config, "t") == "ok"
    assert sleeps == [0.5, 1.0]

    def always_down():
        raise httpx.ConnectError("refused")

    sleeps.clear()
    with pytest.raises(httpx.ConnectError):
        connection.with_retries(always_down, config, "t")
    assert sleeps == [0.5, 1.0, 2.0, 4.0]

    from argilla._exceptions import UnprocessableEntityError

    def bad_request():
        raise UnprocessableEntityError("bad", status_code=422)

    sleeps.clear()
    with pytest.raises(UnprocessableEntityError):
        connection.with_retries(bad_request, config, "t")
    assert sleeps == []  # a 4xx is our mistake: retrying cannot help


def test_not_configured_is_one_line(cli, sqlite_url, monkeypatch):
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    code, out = cli("argilla", "sync")
    assert code == 2
    assert out.strip().splitlines() == [
        "error: Argilla is not configured: set ARGILLA_API_URL and ARGILLA_API_KEY "
        "(`rlaif argilla serve` starts a local server and prints them)"
    ]


def test_push_to_argilla_carries_systems(config, argilla_server, session):
    """A real Argilla server: a dataset created before systems existed gets the two metadata
    properties on the next push, and the records carry them."""
    from pipeline.argilla import sync
    from pipeline.argilla.connection import connect

    bare = make_pair(session, "old")
    session.commit()
    sync.push(config)  # an existing dataset
    dataset = connect(config).datasets(name=config.dataset, workspace=config.workspace)
    for name in ("system_a", "system_b"):  # as if created before systems existed
        dataset.settings.metadata[name].delete()
    dataset = connect(config).datasets(name=config.dataset, workspace=config.workspace)
    assert not {m.name for m in dataset.settings.metadata} & {"system_a", "system_b"}

    pair = make_pair(session, "new", system_a="model-x", system_b="model-y")
    session.commit()
    result = sync.push(config)
    assert result.pushed == 1  # only the new pair: the old record did not change
    records = records_by_external_id(argilla_server, config.dataset)
    assert records[f"pair-{pair.id}"]["metadata"]["system_a"] == "model-x"
    assert records[f"pair-{pair.id}"]["metadata"]["system_b"] == "model-y"
    assert "system_a" not in records[f"pair-{bare.id}"]["metadata"]
