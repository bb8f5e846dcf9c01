"""Community-correction check-ins: subjects, schedules, windows, check-ins with evidence, alerts,
notifications, roll-calls, one-time codes and education sessions with attendance.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checkin_rollcalls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('ring_s', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_checkin_rollcalls_created_by_id_users'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_rollcalls'))
    )
    op.create_table('checkin_subjects',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('officer_id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('supervision_start', sa.Date(), nullable=False),
        sa.Column('supervision_end', sa.Date(), nullable=False),
        sa.Column('risk_level', sa.Enum('low', 'medium', 'high', name='checkin_risk_level', native_enum=False, length=16), nullable=False),
        sa.Column('client', sa.String(length=200), nullable=True),
        sa.Column('area', sa.JSON(), nullable=True),
        sa.Column('pin_hash', sa.String(length=255), nullable=False),
        sa.Column('pin_failures', sa.Integer(), nullable=False),
        sa.Column('photo_path', sa.String(length=500), nullable=True),
        sa.Column('photo_sha256', sa.String(length=64), nullable=True),
        sa.Column('photo_descriptor', sa.JSON(), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['officer_id'], ['users.id'], name=op.f('fk_checkin_subjects_officer_id_users'), ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_checkin_subjects_organisation_id_organisations'), ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_subjects')),
        sa.UniqueConstraint('number', name=op.f('uq_checkin_subjects_number'))
    )
    op.create_index(op.f('ix_checkin_subjects_client'), 'checkin_subjects', ['client'], unique=False)
    op.create_index(op.f('ix_checkin_subjects_officer_id'), 'checkin_subjects', ['officer_id'], unique=False)
    op.create_index(op.f('ix_checkin_subjects_organisation_id'), 'checkin_subjects', ['organisation_id'], unique=False)
    op.create_table('education_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('room_id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=True),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('min_share', sa.Float(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_education_sessions_created_by_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_education_sessions_organisation_id_organisations'), ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_education_sessions_room_id_rooms'), ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_education_sessions')),
        sa.UniqueConstraint('room_id', name=op.f('uq_education_sessions_room_id'))
    )
    op.create_index(op.f('ix_education_sessions_organisation_id'), 'education_sessions', ['organisation_id'], unique=False)
    op.create_table('checkin_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_checkin_codes_created_by_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['subject_id'], ['checkin_subjects.id'], name=op.f('fk_checkin_codes_subject_id_checkin_subjects'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_codes')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_checkin_codes_code_hash'))
    )
    op.create_index(op.f('ix_checkin_codes_subject_id'), 'checkin_codes', ['subject_id'], unique=False)
    op.create_table('checkin_schedules',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('daily', 'weekly', 'spot', 'once', name='checkin_schedule_kind', native_enum=False, length=16), nullable=False),
        sa.Column('start_time', sa.String(length=8), nullable=True),
        sa.Column('end_time', sa.String(length=8), nullable=True),
        sa.Column('days', sa.JSON(), nullable=False),
        sa.Column('per_week', sa.Integer(), nullable=False),
        sa.Column('spot_s', sa.Integer(), nullable=False),
        sa.Column('seed', sa.BigInteger(), nullable=False),
        sa.Column('opens_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closes_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('grace_s', sa.Integer(), nullable=False),
        sa.Column('remind_s', sa.Integer(), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_checkin_schedules_created_by_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['subject_id'], ['checkin_subjects.id'], name=op.f('fk_checkin_schedules_subject_id_checkin_subjects'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_schedules'))
    )
    op.create_index(op.f('ix_checkin_schedules_subject_id'), 'checkin_schedules', ['subject_id'], unique=False)
    op.create_table('education_attendees',
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['education_sessions.id'], name=op.f('fk_education_attendees_session_id_education_sessions'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['subject_id'], ['checkin_subjects.id'], name=op.f('fk_education_attendees_subject_id_checkin_subjects'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('session_id', 'subject_id', name=op.f('pk_education_attendees'))
    )
    op.create_index(op.f('ix_education_attendees_subject_id'), 'education_attendees', ['subject_id'], unique=False)
    op.create_table('education_presence',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('participant_id', sa.String(length=150), nullable=False),
        sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['session_id'], ['education_sessions.id'], name=op.f('fk_education_presence_session_id_education_sessions'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['subject_id'], ['checkin_subjects.id'], name=op.f('fk_education_presence_subject_id_checkin_subjects'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_education_presence'))
    )
    op.create_index(op.f('ix_education_presence_session_id'), 'education_presence', ['session_id'], unique=False)
    op.create_index(op.f('ix_education_presence_subject_id'), 'education_presence', ['subject_id'], unique=False)
    op.create_table('checkin_windows',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('schedule_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('daily', 'weekly', 'spot', 'once', name='checkin_schedule_kind', native_enum=False, length=16), nullable=False),
        sa.Column('opens_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closes_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('grace_until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('remind_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('result', sa.Enum('pending', 'passed', 'failed', 'missed', 'cancelled', name='checkin_window_result', native_enum=False, length=16), nullable=False),
        sa.ForeignKeyConstraint(['schedule_id'], ['checkin_schedules.id'], name=op.f('fk_checkin_windows_schedule_id_checkin_schedules'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['subject_id'], ['checkin_subjects.id'], name=op.f('fk_checkin_windows_subject_id_checkin_subjects'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_windows')),
        sa.UniqueConstraint('schedule_id', 'opens_at', name=op.f('uq_checkin_windows_schedule_id'))
    )
    op.create_index('ix_checkin_windows_result_grace_until', 'checkin_windows', ['result', 'grace_until'], unique=False)
    op.create_index('ix_checkin_windows_subject_id_opens_at', 'checkin_windows', ['subject_id', 'opens_at'], unique=False)
    op.create_table('checkins',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=True),
        sa.Column('officer_id', sa.Integer(), nullable=True),
        sa.Column('window_id', sa.Integer(), nullable=True),
        sa.Column('rollcall_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.Enum('phone', 'browser', 'rollcall', 'window', name='checkin_kind', native_enum=False, length=16), nullable=False),
        sa.Column('outcome', sa.Enum('pending', 'on_time', 'late', 'missed', 'identity_failed', 'outside_area', 'rejected', 'outside_window', 'incomplete', name='checkin_outcome', native_enum=False, length=16), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('node', sa.String(length=64), nullable=False),
        sa.Column('call_id', sa.String(length=150), nullable=True),
        sa.Column('caller', sa.String(length=100), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('pin_ok', sa.Boolean(), nullable=False),
        sa.Column('challenge', sa.String(length=16), nullable=False),
        sa.Column('recording_path', sa.String(length=500), nullable=True),
        sa.Column('location', sa.String(length=16), nullable=False),
        sa.Column('latitude', sa.Float(), nullable=True),
        sa.Column('longitude', sa.Float(), nullable=True),
        sa.Column('accuracy_m', sa.Float(), nullable=True),
        sa.Column('distance_m', sa.Float(), nullable=True),
        sa.Column('identity', sa.String(length=16), nullable=False),
        sa.Column('identity_distance', sa.Float(), nullable=True),
        sa.Column('review', sa.String(length=8), nullable=True),
        sa.Column('review_note', sa.Text(), nullable=False),
        sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
        sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['reviewed_by_id'], ['users.id'], name=op.f('fk_checkins_reviewed_by_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['rollcall_id'], ['checkin_rollcalls.id'], name=op.f('fk_checkins_rollcall_id_checkin_rollcalls'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['subject_id'], ['checkin_subjects.id'], name=op.f('fk_checkins_subject_id_checkin_subjects'), ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['window_id'], ['checkin_windows.id'], name=op.f('fk_checkins_window_id_checkin_windows'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_checkins'))
    )
    op.create_index(op.f('ix_checkins_call_id'), 'checkins', ['call_id'], unique=False)
    op.create_index('ix_checkins_organisation_id_started_at', 'checkins', ['organisation_id', 'started_at'], unique=False)
    op.create_index(op.f('ix_checkins_outcome'), 'checkins', ['outcome'], unique=False)
    op.create_index(op.f('ix_checkins_rollcall_id'), 'checkins', ['rollcall_id'], unique=False)
    op.create_index('ix_checkins_subject_id_started_at', 'checkins', ['subject_id', 'started_at'], unique=False)
    op.create_index(op.f('ix_checkins_window_id'), 'checkins', ['window_id'], unique=False)
    op.create_table('checkin_alerts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('checkin_id', sa.Integer(), nullable=True),
        sa.Column('organisation_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('message', sa.String(length=500), nullable=False),
        sa.Column('officer_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('escalate_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('escalated_to_id', sa.Integer(), nullable=True),
        sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
        sa.Column('ack_note', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_checkin_alerts_acknowledged_by_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['checkin_id'], ['checkins.id'], name=op.f('fk_checkin_alerts_checkin_id_checkins'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['escalated_to_id'], ['users.id'], name=op.f('fk_checkin_alerts_escalated_to_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['officer_id'], ['users.id'], name=op.f('fk_checkin_alerts_officer_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['subject_id'], ['checkin_subjects.id'], name=op.f('fk_checkin_alerts_subject_id_checkin_subjects'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_alerts'))
    )
    op.create_index('ix_checkin_alerts_acknowledged_at_escalate_at', 'checkin_alerts', ['acknowledged_at', 'escalate_at'], unique=False)
    op.create_index(op.f('ix_checkin_alerts_checkin_id'), 'checkin_alerts', ['checkin_id'], unique=False)
    op.create_index(op.f('ix_checkin_alerts_officer_id'), 'checkin_alerts', ['officer_id'], unique=False)
    op.create_index(op.f('ix_checkin_alerts_organisation_id'), 'checkin_alerts', ['organisation_id'], unique=False)
    op.create_index(op.f('ix_checkin_alerts_subject_id'), 'checkin_alerts', ['subject_id'], unique=False)
    op.create_table('checkin_snapshots',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('checkin_id', sa.Integer(), nullable=False),
        sa.Column('path', sa.String(length=500), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content_type', sa.String(length=32), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('faces', sa.Integer(), nullable=True),
        sa.Column('identity', sa.String(length=16), nullable=False),
        sa.Column('distance', sa.Float(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['checkin_id'], ['checkins.id'], name=op.f('fk_checkin_snapshots_checkin_id_checkins'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_snapshots'))
    )
    op.create_index(op.f('ix_checkin_snapshots_checkin_id'), 'checkin_snapshots', ['checkin_id'], unique=False)
    op.create_table('checkin_notifications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('window_id', sa.Integer(), nullable=True),
        sa.Column('alert_id', sa.Integer(), nullable=True),
        sa.Column('message', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['alert_id'], ['checkin_alerts.id'], name=op.f('fk_checkin_notifications_alert_id_checkin_alerts'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['subject_id'], ['checkin_subjects.id'], name=op.f('fk_checkin_notifications_subject_id_checkin_subjects'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_checkin_notifications_user_id_users'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['window_id'], ['checkin_windows.id'], name=op.f('fk_checkin_notifications_window_id_checkin_windows'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_checkin_notifications'))
    )
    op.create_index(op.f('ix_checkin_notifications_subject_id'), 'checkin_notifications', ['subject_id'], unique=False)
    op.create_index(op.f('ix_checkin_notifications_user_id'), 'checkin_notifications', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_checkin_notifications_user_id'), table_name='checkin_notifications')
    op.drop_index(op.f('ix_checkin_notifications_subject_id'), table_name='checkin_notifications')
    op.drop_table('checkin_notifications')
    op.drop_index(op.f('ix_checkin_snapshots_checkin_id'), table_name='checkin_snapshots')
    op.drop_table('checkin_snapshots')
    op.drop_index(op.f('ix_checkin_alerts_subject_id'), table_name='checkin_alerts')
    op.drop_index(op.f('ix_checkin_alerts_organisation_id'), table_name='checkin_alerts')
    op.drop_index(op.f('ix_checkin_alerts_officer_id'), table_name='checkin_alerts')
    op.drop_index(op.f('ix_checkin_alerts_checkin_id'), table_name='checkin_alerts')
    op.drop_index('ix_checkin_alerts_acknowledged_at_escalate_at', table_name='checkin_alerts')
    op.drop_table('checkin_alerts')
    op.drop_index(op.f('ix_checkins_window_id'), table_name='checkins')
    op.drop_index('ix_checkins_subject_id_started_at', table_name='checkins')
    op.drop_index(op.f('ix_checkins_rollcall_id'), table_name='checkins')
    op.drop_index(op.f('ix_checkins_outcome'), table_name='checkins')
    op.drop_index('ix_checkins_organisation_id_started_at', table_name='checkins')
    op.drop_index(op.f('ix_checkins_call_id'), table_name='checkins')
    op.drop_table('checkins')
    op.drop_index('ix_checkin_windows_subject_id_opens_at', table_name='checkin_windows')
    op.drop_index('ix_checkin_windows_result_grace_until', table_name='checkin_windows')
    op.drop_table('checkin_windows')
    op.drop_index(op.f('ix_education_presence_subject_id'), table_name='education_presence')
    op.drop_index(op.f('ix_education_presence_session_id'), table_name='education_presence')
    op.drop_table('education_presence')
    op.drop_index(op.f('ix_education_attendees_subject_id'), table_name='education_attendees')
    op.drop_table('education_attendees')
    op.drop_index(op.f('ix_checkin_schedules_subject_id'), table_name='checkin_schedules')
    op.drop_table('checkin_schedules')
    op.drop_index(op.f('ix_checkin_codes_subject_id'), table_name='checkin_codes')
    op.drop_table('checkin_codes')
    op.drop_index(op.f('ix_education_sessions_organisation_id'), table_name='education_sessions')
    op.drop_table('education_sessions')
    op.drop_index(op.f('ix_checkin_subjects_organisation_id'), table_name='checkin_subjects')
    op.drop_index(op.f('ix_checkin_subjects_officer_id'), table_name='checkin_subjects')
    op.drop_index(op.f('ix_checkin_subjects_client'), table_name='checkin_subjects')
    op.drop_table('checkin_subjects')
    op.drop_table('checkin_rollcalls')
