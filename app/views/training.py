"""Training: admins start reward-model and PPO runs on a snapshot and watch or cancel them;
everyone else sees the runs read-only. Runs are TrainingJob rows run by pipeline/train/jobs.py in
their own process group: this page only starts, reads and cancels them. The run form's widgets
are declared with the config fields (pipeline/train/reward_config.py, ppo_config.py)."""

from __future__ import annotations

import zlib
from dataclasses import fields

import altair as alt
import pandas as pd
import streamlit as st

from app.evaluation_panel import evaluation_panel
from app.guard import require_user
from app.render import inline_text
from db.enums import ACTIVE_JOB_STATUSES
from db.models import TrainingJob
from db.session import session_scope
from pipeline.errors import UserError
from pipeline.train import jobs, monitors, runs
from pipeline.train.config import choices, widget_fields
from pipeline.train.ppo_config import PpoRunConfig
from pipeline.train.reward_config import RewardRunConfig

user = require_user()
is_admin = user.role == "admin"
st.title("Training")
RM_DEFAULTS = RewardRunConfig()
PPO_DEFAULTS = PpoRunConfig(judge_model="bundled:smollm2")


def field_input(column, defaults, name: str):
    """The widget a config field declares (pipeline/train/config.py `Widget`): a select box
    for choices, a number input within its bounds, else a text input; default from the config."""
    item = next(f for f in fields(defaults) if f.name == name)
    widget, value = item.metadata["widget"], getattr(defaults, name)
    options = choices(type(defaults), name) or widget.options
    hint = item.metadata["help"]
    if options:
        index = options.index(value)
        return column.selectbox(widget.label, options, index=index, key=widget.key, help=hint)
    if isinstance(value, str):
        return column.text_input(widget.label, value, key=widget.key, help=hint)
    kind = type(value)  # int or float: bounds and value must agree
    return kind(
        column.number_input(
            widget.label,
            kind(widget.low),
            kind(widget.high),
            value,
            format=widget.format,
            key=widget.key,
            help=hint,
        )
    )


def form_values(defaults, names: list[str] | None = None, per_row: int = 4) -> dict:
    """Widgets for the config fields that declare one (or `names`), `per_row` to a row."""
    names = names or [f.name for f in widget_fields(type(defaults))]
    values = {}
    for start in range(0, len(names), per_row):
        row = st.columns(per_row)
        for column, name in zip(row, names[start : start + per_row], strict=False):
            values[name] = field_input(column, defaults, name)
    return values


def reward_form(snapshot: str) -> dict:
    return dict(snapshot=snapshot, **form_values(RM_DEFAULTS))


def ppo_form(snapshot: str) -> dict:
    with session_scope() as session:
        models = runs.trained_reward_models(session)
    c = st.columns(3)
    policy = field_input(c[0], PPO_DEFAULTS, "policy_model")
    source = c[1].radio(
        "Reward",
        ["trained reward model", "direct judge (d-RLAIF)"],
        key="ppo_reward_source",
        horizontal=True,
    )
    config = dict(snapshot=snapshot, policy_model=policy)
    if source == "trained reward model":
        labels = dict(models)
        chosen = c[2].selectbox(
            "Reward model",
            list(labels),
            format_func=labels.get,
            key="ppo_rm",
            placeholder="train a reward model first",
        )
        config["reward_model"] = chosen
    else:
        config["judge_model"] = field_input(c[2], PPO_DEFAULTS, "judge_model")
    shown = ("policy_model", "judge_model")
    numbers = [f.name for f in widget_fields(PpoRunConfig) if f.name not in shown]
    config.update(form_values(PPO_DEFAULTS, numbers, per_row=len(numbers)))
    return config


def _make_snapshot() -> None:
    """Button callback: it runs before the widgets exist, so it may pick the new snapshot."""
    try:
        snap_id, n_human, n_ai = runs.make_snapshot(user, float(st.session_state["train_min_conf"]))
    except (UserError, PermissionError) as error:
        st.session_state["train_flash"] = ("error", inline_text(error))
        return
    st.session_state["train_snapshot"] = snap_id
    st.session_state["train_flash"] = (
        "success",
        f"Snapshot {snap_id}: {n_human} human + {n_ai} AI labels.",
    )


def start_panel() -> None:
    with session_scope() as session:
        snapshots = dict(runs.snapshot_choices(session))
    st.subheader("Start a run")
    c = st.columns([3, 1, 1])
    snapshot = c[0].selectbox(
        "Snapshot",
        list(snapshots),
        format_func=snapshots.get,
        key="train_snapshot",
        placeholder="make one from the labels",
    )
    c[1].number_input("Min AI confidence", 0.5, 1.0, 0.8, key="train_min_conf")
    c[2].button(
        "New snapshot from current labels", key="train_make_snapshot", on_click=_make_snapshot
    )
    flash = st.session_state.pop("train_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    kind = st.radio(
        "Train",
        ["reward", "ppo"],
        key="train_kind",
        horizontal=True,
        format_func={"reward": "Reward model", "ppo": "PPO policy"}.get,
    )
    config = reward_form(snapshot or "") if kind == "reward" else ppo_form(snapshot or "")
    if st.button("Start training", key="train_start", type="primary", disabled=not snapshot):
        try:
            job_id = jobs.start_job(kind, config, user=user)
        except (UserError, PermissionError) as error:
            st.error(inline_text(error))
        else:
            st.session_state["train_followed"] = job_id  # the run picker below follows it
            st.success(f"Job {job_id} started.")
    with st.expander("Same run on several GPUs (accelerate, data parallel)"):
        st.code(
            "# save the settings above as run.yaml, then:\n"
            + jobs.accelerate_command(kind, "run.yaml"),
            language="bash",
        )


def curve(frame: pd.DataFrame, names: list[str], title: str) -> None:
    data = frame[frame["name"].isin(names)]
    if data.empty:
        return
    chart = (
        alt.Chart(data, title=title)
        .mark_line(point=True)
        .encode(
            x="step:Q",
            y=alt.Y("value:Q", scale=alt.Scale(zero=False)),
            color="name:N",
            tooltip=["name", "step", "value"],
        )
    )
    st.altair_chart(chart, width="stretch")


def monitor_charts(frame: pd.DataFrame, rows: list[tuple[int, str, float]]) -> None:
    """Reward hacking and collapse: length, diversity, and the judge beside the reward model."""
    series = monitors.series_from_rows(rows)
    for warning in monitors.drift_warnings(series):
        st.warning(warning.text)
    divergence = monitors.divergence_warning(series)
    if divergence:
        st.warning(divergence)
    left, right = st.columns(2)
    with left:
        curve(frame, [monitors.LENGTH, monitors.REFERENCE_LENGTH], "Response length (tokens)")
        curve(frame, [monitors.DISTINCT_1, monitors.DISTINCT_2, monitors.DUPLICATES], "Diversity")
    with right:
        curve(frame, [monitors.LENGTH_RATIO], "Length / reference's (probe prompts)")
        curve(frame, [monitors.RM_SCORE], "Reward model score")
        curve(frame, [monitors.JUDGE_PREFERENCE], "Judge prefers the policy (probe, 0.5 = even)")


@st.fragment(run_every=3)
def progress(job_id: int, shown: tuple[tuple[int, str], ...]) -> None:
    """Polls the followed run. When any run changed state since the page last ran in full, the
    whole page runs again, so the pickers (runs, reward models) show the new state too."""
    with session_scope() as session:
        jobs.reconcile(session)
        if runs.job_states(session) != shown:
            st.rerun(scope="app")
        job = session.get(TrainingJob, job_id)
        rows = runs.metric_rows(session, job_id)
        chain = runs.lineage(session, job)
        sample_rows = runs.samples(job)
        status, kind, error, log_path = job.status, job.kind, job.error, job.log_path
        final = dict(job.final_metrics or {})
    frame = pd.DataFrame(rows, columns=["step", "name", "value"])
    step = int(frame["step"].max()) if len(frame) else 0
    c = st.columns([1, 1, 1, 3])
    c[0].metric("Status", status)
    c[1].metric("Step", step)
    if final.get("heldout_accuracy") is not None:
        c[2].metric("Held-out accuracy", f"{final['heldout_accuracy']:.3f}")
    if is_admin and status in ACTIVE_JOB_STATUSES and c[3].button("Cancel", key="train_cancel"):
        try:
            jobs.cancel_job(job_id, user=user)
            st.rerun()
        except (UserError, PermissionError) as error:
            st.error(inline_text(error))
    st.caption(" → ".join(inline_text(link) for link in chain))
    if kind == "reward":
        curve(frame, ["loss", "eval_loss"], "Loss")
        curve(frame, ["accuracy", "eval_accuracy"], "Pairwise accuracy")
    else:
        curve(frame, ["objective/scores", "objective/rlhf_reward"], "Reward")
        curve(frame, ["objective/kl"], "KL to the reference")
        curve(frame, ["objective/entropy"], "Entropy")
        monitor_charts(frame, rows)
        if sample_rows:
            st.caption("Sample completions (latest)")
            st.dataframe(pd.DataFrame(sample_rows), hide_index=True, key="train_samples")
    if final:
        st.dataframe(pd.DataFrame([final]), hide_index=True)
    if error:
        st.error("The run failed or was stopped:")
        st.code(error[-3000:], language="text")
    with st.expander("Log"):
        st.code(jobs.log_tail(log_path, 3000) or "(empty)", language="text")


if is_admin:
    start_panel()
else:
    st.info("You can follow training runs here; only admins start or cancel them.")

with session_scope() as session:
    past = runs.list_jobs(session)
    states = runs.job_states(session)
    table = [
        {
            "id": j.id,
            "kind": j.kind,
            "status": j.status,
            "by": j.created_by,
            "started": j.started_at,
            "ended": j.ended_at,
            "snapshot": j.snapshot_id,
            "from job": j.parent_job_id,
            "lineage": " → ".join(runs.lineage(session, j)),
        }
        for j in past
    ]
st.subheader("Runs")
if not table:
    st.caption("No training runs yet.")
else:
    labels = {r["id"]: f"#{r['id']} {r['kind']} · {r['status']}" for r in table}
    ids = list(labels)
    followed = st.session_state.get("train_followed")
    # The browser's select box does not always redraw the chosen option's text when only its
    # label changed ("#1 reward · queued" stayed after the run succeeded), so a change of any
    # label makes it a new widget, which starts on the run followed so far.
    version = zlib.crc32("\n".join(labels.values()).encode())
    with st.container(key="train_follow"):
        picked = st.selectbox(
            "Follow run",
            ids,
            index=ids.index(followed) if followed in ids else 0,
            key=f"train_follow_{version}",
            format_func=labels.get,
        )
    st.session_state["train_followed"] = picked
    progress(picked, states)
    picked_row = next(r for r in table if r["id"] == picked)
    evaluation_panel(picked, picked_row["kind"], picked_row["status"], user, is_admin)
    st.dataframe(pd.DataFrame(table), hide_index=True, key="train_runs")
