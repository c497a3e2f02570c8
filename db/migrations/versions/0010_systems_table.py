"""systems as a table, and pairs.system_a_id / system_b_id beside the names, so that the
evaluation queries read integers instead of comparing names on a million rows

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "systems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_systems")),
        sa.UniqueConstraint("name", name=op.f("uq_systems_name")),
    )
    # A plain ADD COLUMN, the foreign key inline: SQLite allows it for a NULL default, where a
    # batch (copy-and-rename) of pairs would fail on the tables that reference it.
    sqlite = op.get_bind().dialect.name == "sqlite"
    for slot in ("a", "b"):
        column, name = f"system_{slot}_id", f"fk_pairs_system_{slot}_id_systems"
        if sqlite:
            op.execute(
                f"ALTER TABLE pairs ADD COLUMN {column} INTEGER "
                f"CONSTRAINT {name} REFERENCES systems (id)"
            )
        else:
            reference = sa.ForeignKey("systems.id", name=name)
            op.add_column("pairs", sa.Column(column, sa.Integer(), reference))
    # Existing pairs: every name gets an id (in name order), and each pair the ids of its names.
    op.execute(
        "INSERT INTO systems (name) SELECT name FROM ("
        "SELECT system_a AS name FROM pairs WHERE system_a IS NOT NULL UNION "
        "SELECT system_b FROM pairs WHERE system_b IS NOT NULL) AS names ORDER BY name"
    )
    op.execute(
        "UPDATE pairs SET "
        "system_a_id = (SELECT id FROM systems WHERE systems.name = pairs.system_a), "
        "system_b_id = (SELECT id FROM systems WHERE systems.name = pairs.system_b) "
        "WHERE system_a IS NOT NULL OR system_b IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("pairs", schema=None) as batch_op:
        for slot in ("a", "b"):
            batch_op.drop_constraint(f"fk_pairs_system_{slot}_id_systems", type_="foreignkey")
            batch_op.drop_column(f"system_{slot}_id")
    op.drop_table("systems")
