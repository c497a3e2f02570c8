"""Shared by the reward and PPO runs: snapshots in, model folders out, metrics to the database.

Imports torch/transformers lazily inside functions, so the job runner can import it cheaply.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import InputError, UserError
from pipeline.settings import get_settings

SNAPSHOT_COLUMNS = ("prompt", "chosen", "rejected", "margin", "p_chosen", "pair_id", "label_source")
HUMAN_SOURCES = ("human", "override")


@dataclass
class SnapshotInfo:
    """What a trained model must cite about the labels it learned from."""

    id: str | None
    path: str
    judge_versions: list[str] = field(default_factory=list)
    n_human: int = 0
    n_ai: int = 0
    rule: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process as the launcher (torchrun, accelerate) set them."""
    settings = get_settings()
    return settings.rank, settings.world_size


def new_run_dir(kind: str, requested: str | None = None) -> Path:
    """A folder no other run uses: `requested` must not exist or be empty. With several
    processes, all ranks use `requested` (they cannot agree on a random name) and only rank 0
    checks it: the others may see what rank 0 already wrote."""
    rank, world = process_rank()
    if world > 1 and not requested:
        raise UserError("several processes: set output_dir, the folder all of them write to")
    if requested:
        path = Path(requested).expanduser()
        if rank == 0 and path.exists() and any(path.iterdir()):
            raise UserError(f"{path}: output folder is not empty; another run wrote there")
        path.mkdir(parents=True, exist_ok=True)
        return path
    from db.session import rlaif_home

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = rlaif_home() / "runs" / f"{kind}-{stamp}-{secrets.token_hex(3)}"
    path.mkdir(parents=True, exist_ok=False)  # the random suffix makes a clash an error
    return path


def snapshot_folder(snapshot: str) -> Path:
    """A snapshot folder (absolute) given its path, or its id looked up in the database. Its files
    are checked against the hash taken at export (the database's, or the folder manifest's)."""
    if not snapshot:
        raise UserError("no snapshot given: pass a snapshot folder or id")
    from pipeline.train.snapshots import check_files, verified_folder

    path = Path(snapshot).expanduser()
    if path.is_dir():
        check_files(path.resolve(), None)
        return path.resolve()
    from db.models import Snapshot
    from db.session import session_scope

    with session_scope() as session:
        row = session.get(Snapshot, snapshot)
        if row is None or not row.path:
            raise UserError(f"{snapshot}: neither a snapshot folder nor a known snapshot id")
        return verified_folder(row)


def load_snapshot(snapshot: str):
    """(datasets.Dataset with SNAPSHOT_COLUMNS, SnapshotInfo). Bad files name file/line/column."""
    from datasets import Dataset, load_from_disk

    folder = snapshot_folder(snapshot)
    if (folder / "hf_dataset").is_dir():
        dataset = load_from_disk(str(folder / "hf_dataset"))
        source = folder / "hf_dataset"
    elif (folder / "preferences.jsonl").is_file():
        rows = []
        source = folder / "preferences.jsonl"
        with open(source, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise InputError(source, number, None, f"not JSON: {error.msg}") from None
        dataset = Dataset.from_list(rows)
    else:
        raise UserError(f"{folder}: no hf_dataset/ or preferences.jsonl in the snapshot folder")
    missing = [c for c in SNAPSHOT_COLUMNS if c not in dataset.column_names]
    if missing and len(dataset):
        raise InputError(source, None, missing[0], "column missing from the snapshot")
    if len(dataset) == 0:
        raise UserError(f"{source}: the snapshot holds no pairs; label some pairs first")
    for index, row in enumerate(dataset.select_columns(["p_chosen", "margin"])):
        p = row["p_chosen"]
        if p is None or not (0.0 <= float(p) <= 1.0) or math.isnan(float(p)):
            raise InputError(source, f"row {index + 1}", "p_chosen", f"{p!r} is not in [0, 1]")
    return dataset, _snapshot_info(folder, dataset)


def _snapshot_info(folder: Path, dataset) -> SnapshotInfo:
    sources = dataset["label_source"]
    info = SnapshotInfo(
        id=None,
        path=str(folder),
        n_human=sum(1 for s in sources if s in HUMAN_SOURCES),
        n_ai=sum(1 for s in sources if s == "ai"),
    )
    manifest = folder / "snapshot.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        info.id = data.get("id")
        info.judge_versions = list(data.get("judge_versions") or [])
        info.rule = dict(data.get("rule") or {})
    return info


def precision_flags(precision: str) -> dict[str, bool]:
    """bf16 mixed precision (autocast, float32 master weights) where the hardware runs bf16
    natively: a GPU that supports it, or a CPU with AVX512-BF16/AMX (pipeline/judging/hf_common).
    `fp32` keeps the plain float32 path (TRL would default bf16 on)."""
    import torch

    from pipeline.judging.backends.hf_common import cpu_flags, cpu_has_native_bf16

    cuda = torch.cuda.is_available()
    if precision == "auto":
        use = torch.cuda.is_bf16_supported() if cuda else cpu_has_native_bf16(cpu_flags())
    else:
        use = precision == "bf16"
    flags = {"bf16": use, "fp16": False}
    if use and not cuda:
        flags["use_cpu"] = True  # transformers accepts bf16 without a GPU only with use_cpu
    return flags


def report_to(value: str) -> list[str]:
    return [] if value in ("", "none") else [v.strip() for v in value.split(",") if v.strip()]


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def db_metrics_callback(job_id: int | None):
    """A TrainerCallback that writes every logged number to JobMetric as it arrives."""
    from transformers import TrainerCallback

    class JobMetricsCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if job_id is None or not logs or not state.is_world_process_zero:
                return
            from pipeline.train.jobs import record_metrics

            values = {
                k: float(v)
                for k, v in logs.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            }
            record_metrics(job_id, state.global_step, values)

    return JobMetricsCallback()


def run_script(main) -> None:
    """`python -m pipeline.train.<algo> --config run.yaml`: a UserError is one line, exit 2."""
    import torch

    if not torch.cuda.is_available():
        # Under torchrun / `accelerate launch --num_processes N` without a GPU, accelerate runs
        # MULTI_CPU (gloo) only when told to use the CPU; else each rank trains alone.
        os.environ.setdefault("ACCELERATE_USE_CPU", "true")
    try:
        main(sys.argv[1:])
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except FileNotFoundError as error:  # --config names a file that is not there
        print(f"error: {error.filename}: no such file", file=sys.stderr)
        sys.exit(2)
    finally:
        _close_process_group()


def _close_process_group() -> None:
    """End a data-parallel run's process group before the interpreter exits: left to its
    teardown, a rank can abort in gloo's threads ("terminate called without an active
    exception", SIGABRT) after the run finished, and the launcher then fails the run."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def use_distinct_pad_token(tokenizer) -> None:
    """Give the tokenizer a pad token that is not its EOS token.

    Chat templates put the EOS token inside prompts (SmolLM2 ends every turn with <|im_end|>,
    which is also its pad token). TRL's PPO masks every pad id in the query, so pad == EOS would
    hide those turns from the policy. The reward model and PPO both call this, so a reward model
    trained on the policy's backbone still shares its token ids."""
    eos = tokenizer.eos_token_id
    if tokenizer.pad_token is not None and (eos is None or tokenizer.pad_token_id != eos):
        return
    vocab = tokenizer.get_vocab()
    for candidate in ("<|endoftext|>", "<pad>", "<|pad|>", "[PAD]", tokenizer.unk_token):
        if candidate and candidate in vocab and vocab[candidate] != eos:
            tokenizer.pad_token = candidate
            return
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # nothing better in the vocabulary
