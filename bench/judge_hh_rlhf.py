"""Honest report: the embedded default judge on the first N bundled HH-RLHF pairs.

Needs the pairs imported and labelled first (the README demo does the same):

    rlaif import pairs pipeline/data/hh_rlhf_harmless_sample.jsonl --chosen-rejected --source hh
    rlaif label --judge default --source hh --limit 200
    python bench/judge_hh_rlhf.py --judge default-smollm2 --out bench/results/judge_hh_rlhf_200.md

Agreement is the share of pairs where the judge's label equals the dataset's human label
(annotator "dataset": the HH-RLHF "chosen" response). Figures come from SQL over the database.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERY = """
SELECT j.label, h.label AS human, j.p_a, j.p_a_ab, j.p_a_ba, j.confidence, j.swap_inconsistent,
       j.status
FROM judgments j
JOIN judge_versions v ON v.id = j.judge_version_id
JOIN pairs p ON p.id = j.pair_id
JOIN human_labels h ON h.pair_id = j.pair_id AND h.annotator = 'dataset'
WHERE v.name = :judge AND (:source IS NULL OR p.source = :source)
ORDER BY j.pair_id
"""


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--judge", default="default-smollm2", help="judge version name")
    parser.add_argument("--source", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from sqlalchemy import text

    from db.session import session_scope

    with session_scope() as session:
        rows = session.execute(text(QUERY), {"judge": args.judge, "source": args.source}).all()
        version = session.execute(
            text(
                "SELECT model_id, model_revision, template_hash, confidence_kind "
                "FROM judge_versions WHERE name = :n"
            ),
            {"n": args.judge},
        ).one()
    ok = [r for r in rows if r.status == "ok"]
    n = len(ok)
    if not n:
        raise SystemExit(f"no judgments of {args.judge} on pairs with a dataset label")
    agree = sum(r.label == r.human for r in ok)
    swap = sum(bool(r.swap_inconsistent) for r in ok)
    consistent = [r for r in ok if not r.swap_inconsistent]
    agree_consistent = sum(r.label == r.human for r in consistent)
    first_slot_ab = sum(r.p_a_ab > 0.5 for r in ok)  # A shown first, judge picks first slot
    first_slot_ba = sum(r.p_a_ba < 0.5 for r in ok)  # B shown first, judge picks first slot
    human_a = sum(r.human == "A" for r in ok)
    only_ab = sum(("A" if r.p_a_ab > 0.5 else "B") == r.human for r in ok)
    lo, hi = wilson(agree, n)
    mean_conf = sum(r.confidence for r in ok) / n
    top = sorted(ok, key=lambda r: -r.confidence)[: max(1, n // 5)]
    agree_top = sum(r.label == r.human for r in top)
    lines = [
        f"# Embedded default judge on the first {len(rows)} bundled HH-RLHF pairs",
        "",
        f"Judge version `{args.judge}`: {version.model_id} ({version.model_revision}), "
        f"template sha256 {str(version.template_hash)[:12]}, confidence kind "
        f"`{version.confidence_kind}`; both orders scored, p = (p_AB + 1 - p_BA) / 2.",
        "Human label: the HH-RLHF `chosen` response (harmless-base test split, MIT), placed in "
        "slot A or B by a seeded coin at import.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| pairs judged (status ok) | {n} of {len(rows)} |",
        f"| agreement with the human label | **{agree / n:.1%}** ({agree}/{n}; 95% CI "
        f"{lo:.1%}-{hi:.1%}) |",
        f"| swap-inconsistency rate | **{swap / n:.1%}** ({swap}/{n}) |",
        "| agreement on swap-consistent pairs | "
        + (
            f"{agree_consistent / len(consistent):.1%} ({agree_consistent}/{len(consistent)})"
            if consistent
            else "n/a (none)"
        )
        + " |",
        f"| agreement on the 20% most confident | {agree_top / len(top):.1%} "
        f"({agree_top}/{len(top)}) |",
        f"| agreement of the A-first order alone (no swap) | {only_ab / n:.1%} |",
        f"| picks the first slot, A shown first / B shown first | {first_slot_ab / n:.1%} / "
        f"{first_slot_ba / n:.1%} |",
        f"| mean confidence max(p, 1-p) | {mean_conf:.3f} |",
        f"| human label in slot A (always-A baseline) | {human_a / n:.1%} |",
        "",
        f"Compared with chance (50%), the agreement is {agree / n - 0.5:+.1%} points; the "
        f"{swap} swap-inconsistent pairs go to the top of the review queue.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
