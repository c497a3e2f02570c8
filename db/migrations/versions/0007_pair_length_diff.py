"""response length difference on pairs (length_diff = len(A) - len(B)), for fast length stats

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("length_diff", sa.Integer(), nullable=True))
    # Existing pairs: the same difference new pairs get at insert (NULL when a length is).
    op.execute(
        "UPDATE pairs SET length_diff = "
        "(SELECT text_length FROM responses WHERE responses.id = pairs.response_a_id) - "
        "(SELECT text_length FROM responses WHERE responses.id = pairs.response_b_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.drop_column("length_diff")
