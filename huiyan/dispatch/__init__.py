"""Command and dispatch (指挥调度): one click calls every terminal of a group into an emergency room.

model.py   pure decisions: a leg's state machine, how a failed call is classified, when it is retried
store.py   dispatch groups (resolved from the organisation tree), dispatches and legs in the database
service.py the dispatches at run time: dial, follow each leg from AMI events, retry, add/drop, end

A dispatch is a room of kind `dispatch` (recorded, the commander as moderator) plus the `dispatches` row
pointing at it; every leg is a dial-out invitation into that room (`RoomControl.invite`) with
`Call-Info: <sip:host>;answer-after=0` so terminals that honour it answer by themselves.
"""
