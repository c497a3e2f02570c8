"""systems on pairs (system_a, system_b) and response lengths, for win rates

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("system_a", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("system_b", sa.String(length=256), nullable=True))
        batch_op.create_index("ix_pairs_systems", ["system_a", "system_b"], unique=False)
        batch_op.create_index("ix_pairs_system_b", ["system_b"], unique=False)
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_length", sa.Integer(), nullable=True))
        batch_op.create_index("ix_responses_length", ["id", "text_length"], unique=False)
    # Existing responses: the same count the model's default gives new ones (characters).
    length = "char_length" if op.get_bind().dialect.name == "postgresql" else "length"
    op.execute(f"UPDATE responses SET text_length = {length}(text)")


def downgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index("ix_responses_length")
        batch_op.drop_column("text_length")
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        batch_op.drop_index("ix_pairs_system_b")
        batch_op.drop_index("ix_pairs_systems")
        batch_op.drop_column("system_b")
        batch_op.drop_column("system_a")
