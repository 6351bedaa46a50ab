"""project members with roles

Projects get members, each with a role in that project (annotator, reviewer or lead);
users who are not global leads see only the projects they are members of. So that an
installation keeps working after the upgrade, every existing user becomes a member of
every existing project with the rights they had: global leads as ``lead``, everyone else
as ``annotator``.

Downgrade drops the table: before it, every user saw every project.

Revision ID: b8d4e61f2a97
Revises: 6a7afa1e819e
Create Date: 2026-12-03 17:00:00.000000

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b8d4e61f2a97'
down_revision = '6a7afa1e819e'
branch_labels = None
depends_on = None


def upgrade():
    member = op.create_table(
        'project_member',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['project.id'],
                                name=op.f('fk_project_member_project_id_project'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'],
                                name=op.f('fk_project_member_user_id_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_project_member')),
        sa.UniqueConstraint('project_id', 'user_id', name='uq_project_member_project_user'),
    )
    op.create_index('ix_project_member_user', 'project_member', ['user_id'], unique=False)
    # Everyone keeps what they had: one INSERT ... SELECT, however many users and projects.
    project = sa.table('project', sa.column('id', sa.Integer))
    user = sa.table('user', sa.column('id', sa.Integer), sa.column('role', sa.String))
    role = sa.case((user.c.role == 'lead', 'lead'), else_='annotator')
    now = sa.literal(datetime.now(UTC), sa.DateTime(timezone=True))
    op.execute(member.insert().from_select(
        ['project_id', 'user_id', 'role', 'created_at'],
        sa.select(project.c.id, user.c.id, role, now).select_from(project.join(user,
                                                                               sa.true()))))


def downgrade():
    op.drop_index('ix_project_member_user', table_name='project_member')
    op.drop_table('project_member')
