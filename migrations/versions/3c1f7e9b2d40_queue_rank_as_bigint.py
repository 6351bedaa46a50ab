"""queue_rank as a 64-bit integer

Skipped images rank at 2e9 + id, which passes a 32-bit INTEGER (2^31 - 1) once image ids
pass ~147 million; PostgreSQL would refuse the write. SQLite's INTEGER is already 64-bit
(a declared type is only an affinity there), so its table is left as it is: a batch
rebuild would copy every image row for nothing.

Revision ID: 3c1f7e9b2d40
Revises: a5a077d30fbf
Create Date: 2026-12-02 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '3c1f7e9b2d40'
down_revision = 'a5a077d30fbf'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column('image', 'queue_rank', existing_type=sa.Integer(),
                    type_=sa.BigInteger(), existing_nullable=True)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column('image', 'queue_rank', existing_type=sa.BigInteger(),
                    type_=sa.Integer(), existing_nullable=True)
