"""who undid an annotation

An annotation kept who gave it and when, and when it was undone, but not who undid it (a
lead may undo anyone's label). ``undone_by_id`` completes the record for the history
export; labels undone before this revision keep it empty (nobody recorded who).

Revision ID: c5e1f0a93b72
Revises: b8d4e61f2a97
Create Date: 2026-12-03 17:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c5e1f0a93b72'
down_revision = 'b8d4e61f2a97'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('undone_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_annotation_undone_by_id_user'), 'user',
                                    ['undone_by_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_annotation_undone_by_id_user'),
                                 type_='foreignkey')
        batch_op.drop_column('undone_by_id')
