"""job chunks for distributed embedding

Revision ID: e4c81b6f0a27
Revises: 3c1f7e9b2d40
Create Date: 2026-12-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e4c81b6f0a27'
down_revision = '3c1f7e9b2d40'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_chunk',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('image_ids', sa.JSON(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('unreadable', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('owner', sa.String(length=255), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_job_chunk_job_id_job'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_chunk')),
        sa.UniqueConstraint('job_id', 'number', name='uq_job_chunk_job_number'),
    )


def downgrade():
    op.drop_table('job_chunk')
