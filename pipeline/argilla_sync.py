"""AI labels to Argilla as suggestions, human answers back as labels. With
pipeline/argilla_connection.py (retries, errors, recorded runs), the only modules that import
argilla.

push: one record per pair (record id `pair-<pair id>`, so pushing again updates in place), with
      the prompt and both responses as fields, a `preference` label question (A / B / tie), an
      optional `note`, metadata (judge, confidence, swap_inconsistent, source, queue_reason) and
      the judge's answer as a suggestion: value = AI label, score = confidence, agent = judge.
pull: submitted responses -> human labels (source "argilla", annotator = Argilla username)
      through db.labels, which audits every change. Drafts and discarded answers are not labels:
      an answer submitted earlier and now a draft or discarded removes the label it made
      (audited). A response deleted through the API leaves no trace to pull and is not noticed.
sync: push, then pull.

Every run is a SyncRun row, failures included. Requests are retried with exponential backoff;
when Argilla stays unreachable the run fails with one clear message, the local database keeps
everything, and the next run catches up (push is a full idempotent upsert, pull re-reads all
submitted responses and writes only what changed).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import argilla as rg
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from db.labels import (
    judge_by_name,
    normalize_label,
    upsert_human_label,
    withdraw_human_label,
)
from db.models import (
    LABELS,
    TIER_CONTRADICTS_HUMAN,
    TIER_JUDGE_DISAGREEMENT,
    TIER_LOW_CONFIDENCE,
    TIER_SWAP_INCONSISTENT,
    TIER_UNJUDGED,
    HumanLabel,
    JudgeVersion,
    Judgment,
    Pair,
)
from db.session import session_scope
from pipeline.argilla_config import ArgillaConfig
from pipeline.argilla_connection import (
    SyncResult,
    connect,
    recorded_run,
    with_retries,
)
from pipeline.errors import UserError

log = logging.getLogger(__name__)

QUESTION = "preference"
NOTE_QUESTION = "note"
RECORD_PREFIX = "pair-"
QUEUE_REASONS = {
    TIER_SWAP_INCONSISTENT: "swap_inconsistent",
    TIER_JUDGE_DISAGREEMENT: "judge_disagreement",
    TIER_CONTRADICTS_HUMAN: "contradicts_human",
    TIER_LOW_CONFIDENCE: "low_confidence",
    TIER_UNJUDGED: "unjudged",
}
REVIEWED = "reviewed"  # enough human labels, or overridden: no longer in the review queue


def record_id(pair_id: int) -> str:
    return f"{RECORD_PREFIX}{pair_id}"


def pair_id_of(record_external_id: str | None) -> int | None:
    if not record_external_id or not record_external_id.startswith(RECORD_PREFIX):
        return None
    tail = record_external_id[len(RECORD_PREFIX) :]
    return int(tail) if tail.isdigit() else None


def dataset_settings() -> rg.Settings:
    return rg.Settings(
        guidelines="Which response is better? A, B, or tie. The suggestion is the AI judge's "
        "label; its score is the judge's confidence.",
        fields=[
            rg.TextField(name="prompt", title="Prompt"),
            rg.TextField(name="response_a", title="Response A"),
            rg.TextField(name="response_b", title="Response B"),
        ],
        questions=[
            rg.LabelQuestion(name=QUESTION, title="Which response is better?", labels=list(LABELS)),
            rg.TextQuestion(name=NOTE_QUESTION, title="Note (optional)", required=False),
        ],
        metadata=[
            rg.TermsMetadataProperty(name="judge", title="Judge version"),
            rg.FloatMetadataProperty(name="confidence", title="Judge confidence"),
            rg.TermsMetadataProperty(name="swap_inconsistent", title="Swap-inconsistent"),
            rg.TermsMetadataProperty(name="source", title="Source"),
            rg.TermsMetadataProperty(name="queue_reason", title="Queue reason"),
        ],
        allow_extra_metadata=False,
    )


# --- push --------------------------------------------------------------------------------------


def _get_or_create_dataset(client: rg.Argilla, config: ArgillaConfig) -> rg.Dataset:
    workspace = client.workspaces(name=config.workspace)
    if workspace is None:
        workspace = rg.Workspace(name=config.workspace, client=client).create()
    dataset = _find_dataset(client, config.dataset, workspace)
    if dataset is None:
        dataset = rg.Dataset(
            name=config.dataset, workspace=workspace, settings=dataset_settings(), client=client
        ).create()
    names = {q.name for q in dataset.settings.questions}
    fields_ = {f.name for f in dataset.settings.fields}
    if QUESTION not in names or not {"prompt", "response_a", "response_b"} <= fields_:
        raise UserError(
            f"Argilla dataset {config.dataset!r} in workspace {config.workspace!r} exists with "
            "other fields or questions; choose another name with --dataset"
        )
    return dataset


def _find_dataset(client: rg.Argilla, name: str, workspace: Any) -> rg.Dataset | None:
    with warnings.catch_warnings():  # "not found" is an answer here, not a warning
        warnings.simplefilter("ignore", UserWarning)
        return client.datasets(name=name, workspace=workspace)


def _pick_judge(session: Session, name: str | None) -> JudgeVersion | None:
    if name:
        judge = judge_by_name(session, name)
        if judge is None:
            known = session.scalars(select(JudgeVersion.name).order_by(JudgeVersion.id)).all()
            raise UserError(f"no judge version named {name!r}; known: {', '.join(known) or '-'}")
        return judge
    # Default: the judge version that wrote the newest judgment.
    return session.scalar(
        select(JudgeVersion)
        .join(Judgment, Judgment.judge_version_id == JudgeVersion.id)
        .order_by(Judgment.updated_at.desc(), Judgment.id.desc())
        .limit(1)
    )


def _pairs_query(only_queue: bool, required: int):
    query = select(Pair)
    if only_queue:
        query = query.where(Pair.human_label_count < required, Pair.override_label.is_(None))
    return query


def build_record(
    pair: Pair, judgment: Judgment | None, judge_name: str | None, required: int
) -> rg.Record:
    reviewed = pair.override_label is not None or pair.human_label_count >= required
    metadata: dict[str, Any] = {
        "judge": judge_name or "none",
        "swap_inconsistent": "yes" if pair.swap_inconsistent else "no",
        "source": pair.source,
        "queue_reason": REVIEWED if reviewed else QUEUE_REASONS.get(pair.queue_tier, "unjudged"),
    }
    suggestions = []
    if judgment is not None:
        metadata["swap_inconsistent"] = "yes" if judgment.swap_inconsistent else "no"
        if judgment.confidence is not None:
            metadata["confidence"] = float(judgment.confidence)
        if judgment.status == "ok" and judgment.label in LABELS:
            score = judgment.confidence
            suggestions.append(
                rg.Suggestion(
                    question_name=QUESTION,
                    value=judgment.label,
                    score=None if score is None else min(1.0, max(0.0, float(score))),
                    agent=judge_name,
                )
            )
    return rg.Record(
        id=record_id(pair.id),
        fields={
            "prompt": pair.prompt.text,
            "response_a": pair.response_a.text,
            "response_b": pair.response_b.text,
        },
        metadata=metadata,
        suggestions=suggestions,
    )


def _push(
    client: rg.Argilla,
    config: ArgillaConfig,
    result: SyncResult,
    judge_name: str | None,
    only_queue: bool,
) -> None:
    from pipeline.review.queue import required_labels

    dataset = _get_or_create_dataset(client, config)
    with session_scope() as session:
        judge = _pick_judge(session, judge_name)
        result.judge = judge.name if judge else None
        required = required_labels(session)
        base = _pairs_query(only_queue, required)
        total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
        last_id = 0
        with tqdm(total=total, desc=f"push to {config.dataset}", unit="rec") as bar:
            while True:
                pairs = session.scalars(
                    base.where(Pair.id > last_id).order_by(Pair.id).limit(config.batch_size)
                ).all()
                if not pairs:
                    break
                last_id = pairs[-1].id
                judgments = {}
                if judge is not None:
                    judgments = {
                        j.pair_id: j
                        for j in session.scalars(
                            select(Judgment).where(
                                Judgment.judge_version_id == judge.id,
                                Judgment.pair_id.in_([p.id for p in pairs]),
                            )
                        )
                    }
                records = [
                    build_record(p, judgments.get(p.id), result.judge, required) for p in pairs
                ]
                models = []
                for record in records:
                    record.dataset = dataset
                    models.append(record.api_model())
                with_retries(
                    lambda models=models: client.api.records.bulk_upsert(dataset.id, models),
                    config,
                    "push batch",
                )
                result.pushed += len(records)
                result.with_suggestion += sum(1 for r in records if len(r.suggestions) > 0)
                bar.update(len(records))
                session.expunge_all()  # keep memory flat on big pools


def push(
    config: ArgillaConfig | None = None, *, judge: str | None = None, only_queue: bool = False
) -> SyncResult:
    config = (config or ArgillaConfig.from_env()).require_server()
    with recorded_run("push", config) as result:
        _push(connect(config), config, result, judge, only_queue)
    return result


# --- pull --------------------------------------------------------------------------------------


def _usernames(client: rg.Argilla) -> dict[Any, str]:
    return {user.id: user.username for user in client.users}


def _pull(client: rg.Argilla, config: ArgillaConfig, result: SyncResult) -> None:
    dataset = _find_dataset(client, config.dataset, config.workspace)
    if dataset is None:
        raise UserError(
            f"no Argilla dataset {config.dataset!r} in workspace {config.workspace!r}: "
            "run `rlaif argilla push` first"
        )
    usernames = with_retries(lambda: _usernames(client), config, "list users")
    query = rg.Query(
        filter=rg.Filter(("response.status", "in", ["submitted", "draft", "discarded"]))
    )
    answers: list[tuple[int, str, str, str | None]] = []  # pair, annotator, label, note
    withdrawn: list[tuple[int, str, str]] = []  # pair, annotator, status (draft or discarded)
    records = with_retries(
        lambda: list(
            dataset.records(
                query=query,
                with_responses=True,
                with_suggestions=False,
                batch_size=config.batch_size,
            )
        ),
        config,
        "read responses",
    )
    for record in records:
        pair_id = pair_id_of(record.id)
        by_user: dict[Any, dict[str, Any]] = {}
        for response in record.responses:
            entry = by_user.setdefault(response.user_id, {"status": str(response.status)})
            entry[response.question_name] = response.value
        for user_id, entry in by_user.items():
            result.responses_seen += 1
            if pair_id is None:
                result.unknown_records.append(str(record.id))
                continue
            if user_id not in usernames:
                usernames.update(with_retries(lambda: _usernames(client), config, "list users"))
            annotator = usernames.get(user_id, f"argilla:{user_id}")
            label = normalize_label(entry.get(QUESTION))
            if not entry["status"].endswith("submitted") or label is None:
                result.ignored += 1
                withdrawn.append((pair_id, annotator, entry["status"].rsplit(".", 1)[-1]))
                continue
            note = entry.get(NOTE_QUESTION) or None
            answers.append((pair_id, annotator, label, note))
    with session_scope() as session:
        # An answer submitted before and now a draft or discarded no longer counts as a label.
        for pair_id, annotator, status in withdrawn:
            result.labels_withdrawn += withdraw_human_label(
                session,
                pair_id=pair_id,
                annotator=annotator,
                source="argilla",
                reason=f"withdrawn in Argilla ({status})",
            )
        known = set(session.scalars(select(Pair.id).where(Pair.id.in_({a[0] for a in answers}))))
        for pair_id, annotator, label, note in answers:
            if pair_id not in known:
                result.unknown_records.append(record_id(pair_id))
                continue
            existed = _has_label(session, pair_id, annotator)
            changed = upsert_human_label(
                session,
                pair_id=pair_id,
                annotator=annotator,
                label=label,
                source="argilla",
                note=note,
                reason="answered in Argilla" if not existed else "changed in Argilla",
            )
            if changed:
                if existed:
                    result.labels_changed += 1
                else:
                    result.labels_new += 1
    if result.unknown_records:
        log.warning(
            "%d Argilla records match no pair in this database (first: %s)",
            len(result.unknown_records),
            result.unknown_records[0],
        )


def _has_label(session: Session, pair_id: int, annotator: str) -> bool:
    return (
        session.scalar(
            select(HumanLabel.id).where(
                HumanLabel.pair_id == pair_id, HumanLabel.annotator == annotator
            )
        )
        is not None
    )


def pull(config: ArgillaConfig | None = None) -> SyncResult:
    config = (config or ArgillaConfig.from_env()).require_server()
    with recorded_run("pull", config) as result:
        _pull(connect(config), config, result)
    return result


def sync(
    config: ArgillaConfig | None = None, *, judge: str | None = None, only_queue: bool = False
) -> SyncResult:
    config = (config or ArgillaConfig.from_env()).require_server()
    with recorded_run("sync", config) as result:
        client = connect(config)
        _push(client, config, result, judge, only_queue)
        _pull(client, config, result)
    return result
