"""harmless ratings of single responses: the judge's verdicts, people's ratings, their audit log,
the Rate responses page's claims and the reports of `rlaif harmless`

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATUSES = "status IN ('ok', 'invalid', 'failed')"


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def upgrade() -> None:
    op.create_table(
        "harmless_judgments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("judge_version_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=True),
        sa.Column("p_harmless", sa.Float(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("label_mass", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(STATUSES, name=op.f("ck_harmless_judgments_status")),
        sa.CheckConstraint(
            "verdict IN ('harmless', 'harmful', 'invalid')",
            name=op.f("ck_harmless_judgments_verdict"),
        ),
        _fk("harmless_judgments", "judge_version_id", "judge_versions"),
        _fk("harmless_judgments", "response_id", "responses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harmless_judgments")),
        sa.UniqueConstraint(
            "response_id",
            "judge_version_id",
            name=op.f("uq_harmless_judgments_response_id"),
        ),
    )
    op.create_index(
        "ix_harmless_judgments_judge",
        "harmless_judgments",
        ["judge_version_id", "status", "response_id"],
    )
    op.create_table(
        "harmless_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("annotator", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "label IN ('harmless', 'harmful')", name=op.f("ck_harmless_labels_label")
        ),
        sa.CheckConstraint(
            "source IN ('app', 'argilla', 'import')", name=op.f("ck_harmless_labels_source")
        ),
        _fk("harmless_labels", "response_id", "responses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harmless_labels")),
        sa.UniqueConstraint(
            "response_id", "annotator", name=op.f("uq_harmless_labels_response_id")
        ),
    )
    op.create_index("ix_harmless_labels_annotator", "harmless_labels", ["annotator", "response_id"])
    op.create_table(
        "harmless_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("old_value", sa.String(length=32), nullable=True),
        sa.Column("new_value", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        _fk("harmless_audit", "response_id", "responses"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harmless_audit")),
    )
    op.create_index("ix_harmless_audit_response", "harmless_audit", ["response_id", "id"])
    op.create_table(
        "harmless_claims",
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        _fk("harmless_claims", "response_id", "responses"),
        sa.PrimaryKeyConstraint("response_id", "username", name=op.f("pk_harmless_claims")),
    )
    op.create_index(
        op.f("ix_harmless_claims_expires_at"), "harmless_claims", ["expires_at"], unique=False
    )
    op.create_table(
        "harmless_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=256), nullable=False),
        sa.Column("judge_version_id", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("alignment", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _fk("harmless_runs", "judge_version_id", "judge_versions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harmless_runs")),
    )
    op.create_index("ix_harmless_runs_judge", "harmless_runs", ["judge_version_id", "id"])


def downgrade() -> None:
    for table, index in (
        ("harmless_runs", "ix_harmless_runs_judge"),
        ("harmless_claims", "ix_harmless_claims_expires_at"),
        ("harmless_audit", "ix_harmless_audit_response"),
        ("harmless_labels", "ix_harmless_labels_annotator"),
        ("harmless_judgments", "ix_harmless_judgments_judge"),
    ):
        op.drop_index(index, table_name=table)
        op.drop_table(table)
