"""client registry: every caller of an inbound API is one client

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 16:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('clients',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('acts_for', sa.String(length=40), nullable=False),
    sa.Column('sources', sa.Text(), nullable=False),
    sa.Column('apis', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=True),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False),
    sa.Column('previous_secret_sha256', sa.String(length=64), nullable=True),
    sa.Column('previous_valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('certificate_sha256', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_clients')),
    sa.UniqueConstraint('secret_sha256', name=op.f('uq_clients_secret_sha256')),
    sa.UniqueConstraint('certificate_sha256', name=op.f('uq_clients_certificate_sha256')),
    )
    op.create_index(op.f('ix_clients_previous_secret_sha256'), 'clients', ['previous_secret_sha256'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_clients_previous_secret_sha256'), table_name='clients')
    op.drop_table('clients')
