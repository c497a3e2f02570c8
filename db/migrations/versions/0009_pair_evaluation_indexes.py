"""partial indexes on pairs for the evaluation queries: pairs with a human outcome, pairs whose
responses differ in length by more than 30 characters

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# As in db/models.py (the queries repeat them word for word).
HUMAN_OUTCOME = (
    "human_consensus IS NOT NULL OR override_label IS NOT NULL OR response_a_id = response_b_id"
)
LENGTH_FAR = "length_diff > 30 OR length_diff < -30"
HUMAN_OUTCOME_COLUMNS = [
    "id",
    "human_consensus",
    "override_label",
    "response_a_id",
    "response_b_id",
    "system_a",
    "system_b",
    "source",
    "length_diff",
]


def upgrade() -> None:
    # Indexes fill themselves from the existing rows: no backfill.
    op.create_index(
        "ix_pairs_human_outcome",
        "pairs",
        HUMAN_OUTCOME_COLUMNS,
        sqlite_where=sa.text(HUMAN_OUTCOME),
        postgresql_where=sa.text(HUMAN_OUTCOME),
    )
    op.create_index(
        "ix_pairs_length_far",
        "pairs",
        ["id", "length_diff"],
        sqlite_where=sa.text(LENGTH_FAR),
        postgresql_where=sa.text(LENGTH_FAR),
    )


def downgrade() -> None:
    op.drop_index("ix_pairs_length_far", table_name="pairs")
    op.drop_index("ix_pairs_human_outcome", table_name="pairs")
