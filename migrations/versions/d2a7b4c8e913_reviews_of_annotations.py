"""reviews of annotations

A reviewer accepts or corrects an annotator's label; either is a new annotation (source
``review``, by the reviewer) whose ``reviews_id`` names the annotation it reviewed, so
the history keeps who reviewed what and when, and the review's label is the image's
current label, the one the next round trains on. Indexed: "has this label been
reviewed" is asked for every candidate of the review queue.

Revision ID: d2a7b4c8e913
Revises: c5e1f0a93b72
Create Date: 2026-12-03 17:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd2a7b4c8e913'
down_revision = 'c5e1f0a93b72'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reviews_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_annotation_reviews', ['reviews_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_annotation_reviews_id_annotation'),
                                    'annotation', ['reviews_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_annotation_reviews_id_annotation'),
                                 type_='foreignkey')
        batch_op.drop_index('ix_annotation_reviews')
        batch_op.drop_column('reviews_id')
