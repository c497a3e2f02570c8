"""Training: admins start reward-model and PPO runs on a snapshot and watch or cancel them;
everyone else sees the runs read-only. Runs are TrainingJob rows run by pipeline/train/jobs.py in
their own process group: this page only starts, reads and cancels them."""

from __future__ import annotations

import zlib

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
from pipeline.train.ppo_config import PpoRunConfig
from pipeline.train.reward_config import LOSS_TYPES, RewardRunConfig

user = require_user()
is_admin = user.role == "admin"
st.title("Training")
RM_DEFAULTS, PPO_DEFAULTS = RewardRunConfig(), PpoRunConfig(judge_model="smollm2")


def reward_form(snapshot: str) -> dict:
    c = st.columns(4)
    model = c[0].text_input(
        "Backbone",
        RM_DEFAULTS.model_name_or_path,
        key="rm_model",
        help="'minilm' (bundled, fast), 'smollm2' (shares the policy's tokens) or a model folder",
    )
    loss = c[1].selectbox(
        "Loss",
        LOSS_TYPES,
        key="rm_loss",
        help="pairwise; margin from the confidence; soft labels on p_chosen",
    )
    epochs = c[2].number_input("Epochs", 0.1, 50.0, RM_DEFAULTS.num_train_epochs, key="rm_epochs")
    lr = c[3].number_input(
        "Learning rate", 1e-7, 1e-1, RM_DEFAULTS.learning_rate, format="%.1e", key="rm_lr"
    )
    c = st.columns(4)
    batch = c[0].number_input(
        "Batch size", 1, 256, RM_DEFAULTS.per_device_train_batch_size, key="rm_batch"
    )
    max_length = c[1].number_input("Max tokens", 16, 8192, RM_DEFAULTS.max_length, key="rm_len")
    max_steps = c[2].number_input("Max steps (-1: off)", -1, 10**6, -1, key="rm_steps")
    report = c[3].selectbox("Report to", ["none", "tensorboard"], key="rm_report")
    return dict(
        snapshot=snapshot,
        model_name_or_path=model,
        loss_type=loss,
        num_train_epochs=float(epochs),
        learning_rate=float(lr),
        per_device_train_batch_size=int(batch),
        max_length=int(max_length),
        max_steps=int(max_steps),
        report_to=report,
    )


def ppo_form(snapshot: str) -> dict:
    with session_scope() as session:
        models = runs.trained_reward_models(session)
    c = st.columns(3)
    policy = c[0].text_input("Policy", PPO_DEFAULTS.policy_model, key="ppo_policy")
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
        config["judge_model"] = c[2].text_input("Judge model", "smollm2", key="ppo_judge")
    c = st.columns(5)
    config.update(
        total_episodes=int(
            c[0].number_input("Episodes", 2, 10**6, PPO_DEFAULTS.total_episodes, key="ppo_episodes")
        ),
        learning_rate=float(
            c[1].number_input(
                "Learning rate", 1e-8, 1e-2, PPO_DEFAULTS.learning_rate, format="%.1e", key="ppo_lr"
            )
        ),
        per_device_train_batch_size=int(
            c[2].number_input(
                "Batch size", 2, 256, PPO_DEFAULTS.per_device_train_batch_size, key="ppo_batch"
            )
        ),
        response_length=int(
            c[3].number_input(
                "Response tokens", 4, 2048, PPO_DEFAULTS.response_length, key="ppo_len"
            )
        ),
        kl_coef=float(
            c[4].number_input("KL coefficient", 0.0, 10.0, PPO_DEFAULTS.kl_coef, key="ppo_kl")
        ),
    )
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
