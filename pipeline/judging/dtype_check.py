"""The bf16-against-float32 check a model passes before `dtype: auto` runs it in bf16.

The same judge, the same pairs, both dtypes: the probabilities must stay close (median |Δp| <=
0.01, max |Δp| <= 0.05), every label either run is confident about (max(p, 1-p) > 0.55) must be
the same, and agreement with the human labels must move by at most 2 points. A label at p ~ 0.5
is a coin flip in either dtype, so it may differ. A model that fails goes into
hf_common.BF16_UNFIT with the reason, and `auto` keeps it in float32.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.judging.base import PairInput

MAX_MEDIAN_DP = 0.01
MAX_ABS_DP = 0.05
CONFIDENT = 0.55
MAX_AGREEMENT_GAP = 0.02
DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class LabelledPair:
    pair: PairInput
    human: str  # "A" or "B": the slot of the human-preferred response


@dataclass
class DtypeCheck:
    pairs: int
    median_abs_dp: float
    mean_abs_dp: float
    max_abs_dp: float
    labels_equal: int
    confident_pairs: int  # either run's confidence > CONFIDENT
    confident_mismatches: int
    agreement_float32: float
    agreement_bfloat16: float
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def compare(p_float32: list[float], p_bfloat16: list[float], human: list[str]) -> DtypeCheck:
    """The figures and the failed criteria, from p(A) of each run and the human slots."""
    if not p_float32 or not len(p_float32) == len(p_bfloat16) == len(human):
        raise ValueError("compare needs the same, non-zero number of pairs in each list")
    gaps = [abs(a - b) for a, b in zip(p_float32, p_bfloat16, strict=True)]
    labels32 = ["A" if p > 0.5 else "B" for p in p_float32]
    labels16 = ["A" if p > 0.5 else "B" for p in p_bfloat16]
    confident = [
        i
        for i, (a, b) in enumerate(zip(p_float32, p_bfloat16, strict=True))
        if max(a, 1 - a) > CONFIDENT or max(b, 1 - b) > CONFIDENT
    ]
    mismatches = sum(labels32[i] != labels16[i] for i in confident)
    n = len(gaps)
    agree32 = sum(a == h for a, h in zip(labels32, human, strict=True)) / n
    agree16 = sum(a == h for a, h in zip(labels16, human, strict=True)) / n
    check = DtypeCheck(
        pairs=n,
        median_abs_dp=statistics.median(gaps),
        mean_abs_dp=sum(gaps) / n,
        max_abs_dp=max(gaps),
        labels_equal=sum(a == b for a, b in zip(labels32, labels16, strict=True)),
        confident_pairs=len(confident),
        confident_mismatches=mismatches,
        agreement_float32=agree32,
        agreement_bfloat16=agree16,
    )
    if check.median_abs_dp > MAX_MEDIAN_DP:
        check.failures.append(f"median |dp| {check.median_abs_dp:.4f} > {MAX_MEDIAN_DP}")
    if check.max_abs_dp > MAX_ABS_DP:
        check.failures.append(f"max |dp| {check.max_abs_dp:.4f} > {MAX_ABS_DP}")
    if mismatches:
        check.failures.append(f"{mismatches} confident labels differ")
    if abs(agree16 - agree32) > MAX_AGREEMENT_GAP + 1e-12:
        check.failures.append(
            f"agreement with humans moved {100 * (agree16 - agree32):+.1f} points"
        )
    return check


def judge_p(model: str, dtype: str, pairs: list[PairInput], max_length: int) -> list[float]:
    """p(A) of the hf judge (both orders combined) in `dtype` on the CPU."""
    from pipeline.judging.backends.hf_logprob import HfLogprobJudge
    from pipeline.judging.config import JudgeConfig

    judge = HfLogprobJudge(
        JudgeConfig(model=model, dtype=dtype, device="cpu", max_length=max_length)
    )
    rows = judge.judge(pairs)
    return [row.p_a for row in rows]


def run_check(model: str, labelled: list[LabelledPair], max_length: int = 2048) -> DtypeCheck:
    pairs = [item.pair for item in labelled]
    p32 = judge_p(model, "float32", pairs, max_length)
    p16 = judge_p(model, "bfloat16", pairs, max_length)
    return compare(p32, p16, [item.human for item in labelled])


def hh_pairs(n: int, seed: int = 0) -> list[LabelledPair]:
    """The first n HH-RLHF pairs; the chosen response in slot A or B by a seeded coin."""
    from pipeline.ingest.records import split_dialogues

    path, coin, out = DATA / "hh_rlhf_harmless_sample.jsonl", random.Random(seed), []
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if len(out) == n:
                break
            row = json.loads(line)
            prompt, chosen, rejected = split_dialogues(path, number, row["chosen"], row["rejected"])
            if coin.random() < 0.5:
                out.append(LabelledPair(PairInput(number, prompt, chosen, rejected), "A"))
            else:
                out.append(LabelledPair(PairInput(number, prompt, rejected, chosen), "B"))
    return out


def llmbar_pairs(n: int) -> list[LabelledPair]:
    """The first n bundled LLMBar Natural pairs with their expert labels."""
    with (DATA / "llmbar_natural_labels.csv").open() as handle:
        labels = {r["pair_id"]: "A" if r["label"] == "1" else "B" for r in csv.DictReader(handle)}
    out = []
    with (DATA / "llmbar_natural_pairs.jsonl").open() as handle:
        for number, line in enumerate(handle, start=1):
            if len(out) == n:
                break
            row = json.loads(line)
            pair = PairInput(10_000 + number, row["prompt"], row["response_a"], row["response_b"])
            out.append(LabelledPair(pair, labels[row["id"]]))
    return out
