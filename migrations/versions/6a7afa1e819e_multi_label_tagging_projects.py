"""multi-label (tagging) projects: tag sets on annotations and images, per-tag scores

A multi-label project's classes are independent tags. An annotation of one of its images
records the whole tag set the annotator affirmed as ``annotation_tag`` rows (none = the
explicit empty set) and leaves ``annotation.label_class_id`` NULL. The image's current set
is mirrored in ``image_tag``, and ``image.tagged_at`` says it is labelled at all (an empty
set is labelled). The queue's partial index now also leaves out tagged images; single-label
images never set ``tagged_at``, so for them the condition means what it meant.
``image_tag_score`` holds the last round's probability of each tag for each image.

Downgrade refuses while a multi-label project exists: its labels have no single-label form
and dropping them would lose acknowledged labels. Delete (or back up and delete) those
projects first.

Revision ID: 6a7afa1e819e
Revises: 7d3a9c51e2b8
Create Date: 2026-12-03 17:05:27.481184

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '6a7afa1e819e'
down_revision = '7d3a9c51e2b8'
branch_labels = None
depends_on = None

OLD_QUEUE = "label_class_id IS NULL"
NEW_QUEUE = "label_class_id IS NULL AND tagged_at IS NULL"


def _queue_index(condition: str) -> None:
    op.create_index('ix_image_queue', 'image', ['project_id', 'queue_rank'], unique=False,
                    sqlite_where=sa.text(condition), postgresql_where=sa.text(condition))


def upgrade():
    # Plain ADD COLUMNs, never a batch rebuild of project or image: with SQLite's foreign
    # keys on, dropping the old table would cascade to every image and annotation (and the
    # image table may hold millions of rows).
    op.add_column('project', sa.Column('multi_label', sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.add_column('image', sa.Column('tagged_at', sa.DateTime(timezone=True), nullable=True))
    op.drop_index('ix_image_queue', table_name='image')
    _queue_index(NEW_QUEUE)

    # SQLite cannot relax NOT NULL in place: the batch rebuilds the annotation table, which
    # is safe because no table refers to it yet (annotation_tag comes next).
    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.alter_column('label_class_id', existing_type=sa.Integer(), nullable=True)

    op.create_table(
        'annotation_tag',
        sa.Column('annotation_id', sa.Integer(), nullable=False),
        sa.Column('label_class_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['annotation_id'], ['annotation.id'],
                                name=op.f('fk_annotation_tag_annotation_id_annotation'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['label_class_id'], ['label_class.id'],
                                name=op.f('fk_annotation_tag_label_class_id_label_class')),
        sa.PrimaryKeyConstraint('annotation_id', 'label_class_id',
                                name=op.f('pk_annotation_tag')),
    )
    op.create_table(
        'image_tag',
        sa.Column('image_id', sa.Integer(), nullable=False),
        sa.Column('label_class_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['image_id'], ['image.id'],
                                name=op.f('fk_image_tag_image_id_image'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['label_class_id'], ['label_class.id'],
                                name=op.f('fk_image_tag_label_class_id_label_class'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('image_id', 'label_class_id', name=op.f('pk_image_tag')),
    )
    op.create_index('ix_image_tag_class_image', 'image_tag', ['label_class_id', 'image_id'],
                    unique=False)
    op.create_table(
        'image_tag_score',
        sa.Column('image_id', sa.Integer(), nullable=False),
        sa.Column('label_class_id', sa.Integer(), nullable=False),
        sa.Column('probability', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['image_id'], ['image.id'],
                                name=op.f('fk_image_tag_score_image_id_image'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['label_class_id'], ['label_class.id'],
                                name=op.f('fk_image_tag_score_label_class_id_label_class'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('image_id', 'label_class_id',
                                name=op.f('pk_image_tag_score')),
    )
    op.create_index('ix_image_tag_score_class_probability', 'image_tag_score',
                    ['label_class_id', 'probability'], unique=False)


def downgrade():
    connection = op.get_bind()
    project = sa.table("project", sa.column("name", sa.String),
                       sa.column("multi_label", sa.Boolean))
    names = connection.execute(
        sa.select(project.c.name).where(project.c.multi_label.is_(sa.true()))).scalars().all()
    if names:
        raise RuntimeError(
            "Cannot downgrade: multi-label projects exist (" + ", ".join(map(repr, names))
            + ") and their tag sets have no older form. Back them up with `labeler backup`, "
            "delete them, then downgrade again.")

    op.drop_index('ix_image_tag_score_class_probability', table_name='image_tag_score')
    op.drop_table('image_tag_score')
    op.drop_index('ix_image_tag_class_image', table_name='image_tag')
    op.drop_table('image_tag')
    op.drop_table('annotation_tag')

    with op.batch_alter_table('annotation', schema=None) as batch_op:
        batch_op.alter_column('label_class_id', existing_type=sa.Integer(), nullable=False)

    op.drop_index('ix_image_queue', table_name='image')
    _queue_index(OLD_QUEUE)
    # Native DROP COLUMN (SQLite 3.35+), not a batch rebuild (see upgrade).
    op.drop_column('image', 'tagged_at')
    op.drop_column('project', 'multi_label')
