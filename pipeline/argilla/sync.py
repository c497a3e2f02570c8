"""push, pull and sync: AI labels to Argilla as suggestions, human answers back as labels.

push: one record per pair (record id `pair-<pair id>`, so pushing again updates in place), with
      the prompt and both responses as fields, a `preference` label question (A / B / tie), an
      optional `note`, metadata (judge, confidence, swap_inconsistent, source, queue_reason) and
      the judge's answer as a suggestion: value = AI label, score = confidence, agent = judge.
      Only records whose content changed since the last push to that dataset are sent (table
      argilla_pushed); `full`, a new dataset, or fewer records in Argilla than we remember
      pushing send everything.
pull: submitted responses -> human labels (source "argilla", annotator = Argilla username)
      through db.labels, which audits every change. Drafts and discarded answers are not labels:
      an answer submitted earlier and now a draft or discarded removes the label it made
      (audited). A response deleted through the API leaves no trace to pull and is not noticed.
sync: push, then pull.

Every run is a SyncRun row, failures included. Requests are retried with exponential backoff;
when Argilla stays unreachable the run fails with one clear message, the local database keeps
everything, and the next run catches up (push is an idempotent upsert of what changed, pull
re-reads all answers and writes only what changed).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import argilla as rg
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from db.labels import (
    judge_by_name,
    normalize_label,
    upsert_human_label,
    withdraw_human_label,
)
from db.models import (
    ArgillaPushed,
    HumanLabel,
    JudgeVersion,
    Judgment,
    Pair,
    utcnow,
)
from db.pair_state import lock_pairs
from db.session import session_scope
from db.upsert import upsert
from pipeline.argilla.config import ArgillaConfig
from pipeline.argilla.connection import (
    SyncResult,
    connect,
    recorded_run,
    with_retries,
)
from pipeline.argilla.records import (
    NOTE_QUESTION,
    QUESTION,
    add_missing_system_properties,
    content_hash,
    dataset_settings,
    pair_id_of,
    record_content,
    record_id,
    to_record,
)
from pipeline.errors import UserError

log = logging.getLogger(__name__)

# --- push --------------------------------------------------------------------------------------


def _get_or_create_dataset(client: rg.Argilla, config: ArgillaConfig) -> tuple[rg.Dataset, bool]:
    """The dataset, and whether this call created it."""
    workspace = client.workspaces(name=config.workspace)
    if workspace is None:
        workspace = rg.Workspace(name=config.workspace, client=client).create()
    dataset = _find_dataset(client, config.dataset, workspace)
    created = dataset is None
    if created:
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
    add_missing_system_properties(dataset)
    return dataset, created


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


def push_target(config: ArgillaConfig) -> str:
    return f"{config.api_url}|{config.workspace}|{config.dataset}"[:512]


def _stored_hashes(session: Session, target: str, pair_ids: list[int]) -> dict[int, str]:
    query = select(ArgillaPushed.pair_id, ArgillaPushed.content_hash).where(
        ArgillaPushed.target == target, ArgillaPushed.pair_id.in_(pair_ids)
    )
    return dict(session.execute(query).tuples().all())


def _needs_full_push(session: Session, dataset: rg.Dataset, target: str, config) -> bool:
    """True when Argilla holds fewer records than we remember pushing (records were deleted
    there, or the dataset was re-created): then every record is sent again."""
    remembered = session.scalar(
        select(func.count()).select_from(ArgillaPushed).where(ArgillaPushed.target == target)
    )
    if not remembered:
        return False
    total = with_retries(lambda: dataset.progress()["total"], config, "read dataset size")
    return total < remembered


def _push(
    client: rg.Argilla,
    config: ArgillaConfig,
    result: SyncResult,
    judge_name: str | None,
    only_queue: bool,
    full: bool = False,
) -> None:
    """Upsert one record per pair, one transaction per batch. Records whose content is
    unchanged since the last push to this dataset are not sent again (`full` sends all)."""
    from pipeline.review.queue import required_labels

    dataset, created = _get_or_create_dataset(client, config)
    target = push_target(config)
    with session_scope() as session:
        judge = _pick_judge(session, judge_name)
        judge_id = judge.id if judge else None
        result.judge = judge.name if judge else None
        required = required_labels(session)
        if full or created or _needs_full_push(session, dataset, target, config):
            session.execute(delete(ArgillaPushed).where(ArgillaPushed.target == target))
        base = _pairs_query(only_queue, required)
        total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    plan = _PushPlan(client, config, dataset, target, judge_id, required)
    last_id = 0
    with tqdm(total=total, desc=f"push to {config.dataset}", unit="rec") as bar:
        while True:
            with session_scope() as session:  # committed per batch: what Argilla has now
                pairs = session.scalars(
                    base.where(Pair.id > last_id).order_by(Pair.id).limit(config.batch_size)
                ).all()
                if not pairs:
                    break
                last_id = pairs[-1].id
                _push_batch(session, plan, pairs, result)
            bar.update(len(pairs))


@dataclass(frozen=True)
class _PushPlan:
    client: rg.Argilla
    config: ArgillaConfig
    dataset: rg.Dataset
    target: str
    judge_id: int | None
    required: int


def _push_batch(session: Session, plan: _PushPlan, pairs: list[Pair], result: SyncResult) -> None:
    """Send the records of `pairs` whose content changed, and remember what was sent."""
    ids = [p.id for p in pairs]
    judgments = {}
    if plan.judge_id is not None:
        query = select(Judgment).where(
            Judgment.judge_version_id == plan.judge_id, Judgment.pair_id.in_(ids)
        )
        judgments = {j.pair_id: j for j in session.scalars(query)}
    contents = {
        p.id: record_content(p, judgments.get(p.id), result.judge, plan.required) for p in pairs
    }
    hashes = {pair_id: content_hash(c) for pair_id, c in contents.items()}
    stored = _stored_hashes(session, plan.target, ids)
    changed = [i for i in ids if stored.get(i) != hashes[i]]
    if changed:
        models = []
        for record in (to_record(contents[i]) for i in changed):
            record.dataset = plan.dataset
            models.append(record.api_model())
        with_retries(
            lambda: plan.client.api.records.bulk_upsert(plan.dataset.id, models),
            plan.config,
            "push batch",
        )
        now = utcnow()
        rows = [
            {"target": plan.target, "pair_id": i, "content_hash": hashes[i], "pushed_at": now}
            for i in changed
        ]
        keys, update = ("target", "pair_id"), ("content_hash", "pushed_at")
        upsert(session, ArgillaPushed.__table__, rows, keys=keys, update=update)
    result.pushed += len(changed)
    result.unchanged += len(ids) - len(changed)
    result.with_suggestion += sum(1 for i in changed if contents[i]["suggestion"] is not None)


# --- pull --------------------------------------------------------------------------------------


def _usernames(client: rg.Argilla) -> dict[Any, str]:
    return {user.id: user.username for user in client.users}


@dataclass
class _Answers:
    """What the pull read from Argilla: answers, and answers no longer submitted."""

    submitted: list[tuple[int, str, str, str | None]]  # pair, annotator, label, note
    withdrawn: list[tuple[int, str, str]]  # pair, annotator, status (draft or discarded)


def _pull(client: rg.Argilla, config: ArgillaConfig, result: SyncResult) -> None:
    dataset = _find_dataset(client, config.dataset, config.workspace)
    if dataset is None:
        raise UserError(
            f"no Argilla dataset {config.dataset!r} in workspace {config.workspace!r}: "
            "run `rlaif argilla push` first"
        )
    answers = _read_answers(client, dataset, config, result)
    with session_scope() as session:
        _store_answers(session, answers, result)
    if result.unknown_records:
        log.warning(
            "%d Argilla records match no pair in this database (first: %s)",
            len(result.unknown_records),
            result.unknown_records[0],
        )


def _read_answers(
    client: rg.Argilla, dataset: rg.Dataset, config: ArgillaConfig, result: SyncResult
) -> _Answers:
    """Every response in the dataset, per pair and annotator: submitted answers with a valid
    label, and the others (drafts, discarded) that withdraw an earlier label."""
    usernames = with_retries(lambda: _usernames(client), config, "list users")
    query = rg.Query(
        filter=rg.Filter(("response.status", "in", ["submitted", "draft", "discarded"]))
    )
    answers = _Answers(submitted=[], withdrawn=[])
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
                answers.withdrawn.append((pair_id, annotator, entry["status"].rsplit(".", 1)[-1]))
                continue
            note = entry.get(NOTE_QUESTION) or None
            answers.submitted.append((pair_id, annotator, label, note))
    return answers


def _store_answers(session: Session, answers: _Answers, result: SyncResult) -> None:
    """Write the answers as human labels (audited by db.labels); count what changed."""
    # Every pair this pull writes, locked at once in ascending order (db/pair_state.py): a
    # lock per answer, in record order, could deadlock with another writer.
    lock_pairs(session, [a[0] for a in answers.submitted] + [w[0] for w in answers.withdrawn])
    # An answer submitted before and now a draft or discarded no longer counts as a label.
    for pair_id, annotator, status in answers.withdrawn:
        result.labels_withdrawn += withdraw_human_label(
            session,
            pair_id=pair_id,
            annotator=annotator,
            source="argilla",
            reason=f"withdrawn in Argilla ({status})",
        )
    submitted_ids = {a[0] for a in answers.submitted}
    known = set(session.scalars(select(Pair.id).where(Pair.id.in_(submitted_ids))))
    for pair_id, annotator, label, note in answers.submitted:
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


def _has_label(session: Session, pair_id: int, annotator: str) -> bool:
    return (
        session.scalar(
            select(HumanLabel.id).where(
                HumanLabel.pair_id == pair_id, HumanLabel.annotator == annotator
            )
        )
        is not None
    )


# --- entry points ------------------------------------------------------------------------------


def run(
    action: Literal["push", "pull", "sync"],
    config: ArgillaConfig | None = None,
    *,
    judge: str | None = None,
    only_queue: bool = False,
    full: bool = False,
) -> SyncResult:
    """One recorded run: push (judge, only_queue and full choose what), pull, or push then pull
    (sync)."""
    config = (config or ArgillaConfig.from_env()).require_server()
    with recorded_run(action, config) as result:
        client = connect(config)
        if action != "pull":
            _push(client, config, result, judge, only_queue, full)
        if action != "push":
            _pull(client, config, result)
    return result


push = partial(run, "push")
pull = partial(run, "pull")
sync = partial(run, "sync")
