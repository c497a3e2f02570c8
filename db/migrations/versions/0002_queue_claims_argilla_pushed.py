"""queue claims (a pair open in one reviewer's queue is not shown to the next reviewer) and
what was pushed to Argilla (a re-push sends only changed records)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_claims",
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["pairs.id"], name=op.f("fk_queue_claims_pair_id_pairs")
        ),
        sa.PrimaryKeyConstraint("pair_id", "username", name=op.f("pk_queue_claims")),
    )
    op.create_index(
        op.f("ix_queue_claims_expires_at"), "queue_claims", ["expires_at"], unique=False
    )
    op.create_table(
        "argilla_pushed",
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=32), nullable=False),
        sa.Column("pushed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"], ["pairs.id"], name=op.f("fk_argilla_pushed_pair_id_pairs")
        ),
        sa.PrimaryKeyConstraint("target", "pair_id", name=op.f("pk_argilla_pushed")),
    )


def downgrade() -> None:
    op.drop_table("argilla_pushed")
    op.drop_index(op.f("ix_queue_claims_expires_at"), table_name="queue_claims")
    op.drop_table("queue_claims")
