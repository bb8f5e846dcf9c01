"""Rooms (会议室): video meetings on ConfBridge, with PIN entry, meeting control, dial-out and legacy interop.

model.py   pure decisions: profiles per video mode and role, PIN and admission rules, live room state
store.py   the rooms' tables (CRUD with their rules) and what the runtime loads and writes
service.py live state of every room on a node, kept from AMI Confbridge events; events on the bus
control.py meeting control through AMI: mute, kick, lock, presenter, recording, end, invite by dial-out
flow.py    the FastAGI `room` route: answer, PIN, admission, ConfBridge with the right profiles

Mediation sessions, dispatch meetings and education sessions are rooms of another `kind` plus their
business line's own table pointing at the room; they reuse joining, control and recording from here.
"""
