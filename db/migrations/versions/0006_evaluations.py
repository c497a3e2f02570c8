"""policy evaluations (policy run -> evaluation -> pairs -> judge version)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=256), nullable=False),
        sa.Column("policy_path", sa.String(length=1024), nullable=False),
        sa.Column("policy_job_id", sa.Integer(), nullable=True),
        sa.Column("baseline", sa.String(length=256), nullable=False),
        sa.Column("baseline_path", sa.String(length=1024), nullable=False),
        sa.Column("judge_version_id", sa.Integer(), nullable=True),
        sa.Column("snapshot_id", sa.String(length=36), nullable=True),
        sa.Column("audit_sample_id", sa.Integer(), nullable=True),
        sa.Column("pair_source", sa.String(length=128), nullable=False),
        sa.Column("prompt_source", sa.String(length=1024), nullable=False),
        sa.Column("n_prompts", sa.Integer(), nullable=False),
        sa.Column("decoding", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("alignment", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["audit_sample_id"],
            ["audit_samples.id"],
            name=op.f("fk_evaluations_audit_sample_id_audit_samples"),
        ),
        sa.ForeignKeyConstraint(
            ["judge_version_id"],
            ["judge_versions.id"],
            name=op.f("fk_evaluations_judge_version_id_judge_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["policy_job_id"],
            ["training_jobs.id"],
            name=op.f("fk_evaluations_policy_job_id_training_jobs"),
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name=op.f("fk_evaluations_snapshot_id_snapshots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
        sa.UniqueConstraint("pair_source", name=op.f("uq_evaluations_pair_source")),
    )
    op.create_index("ix_evaluations_policy_job", "evaluations", ["policy_job_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_evaluations_policy_job", table_name="evaluations")
    op.drop_table("evaluations")
