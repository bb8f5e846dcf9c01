"""Remote mediation (远程调解): cases, their parties and file, and sessions held in a room of their own.

model.py   pure decisions: statuses and their transitions, case numbers and PINs, who sees which case,
           which recording belongs to which session
store.py   the cases' tables (with their rules) and the room each case's sessions run in
service.py sessions at run time: start (room opened, recorded, PIN = the case's), end (the meeting ended,
           the room closed), a lawyer invited mid-session; `MediationEvent`s on the bus

A session is a room of kind `mediation` (huiyan.rooms): joining, the recording notice, meeting control
and recording all come from there.
"""
