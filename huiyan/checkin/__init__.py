"""Community-correction video check-ins (社区矫正视频点验): who must check in, when, how it went, and what
happens when they do not.

model.py    pure decisions: schedules -> windows (daily, weekly, seeded spot checks, once), on time / late,
            the allowed area (circle or polygon) and where a point lies, PINs and one-time codes, the
            liveness challenge, who sees which subject, attendance, report figures, month bounds
store.py    the tables, kept by their rules: subjects, schedules, windows, check-ins, alerts, notifications,
            roll-calls, one-time codes, education sessions; report queries
face.py     images (JPEG/PNG) and the identity check: dlib's face detector and ResNet descriptor with the
            weights of `face-recognition-models` (the `face` extra); without them, detection is
            unavailable and the officer confirms identity (never a made-up score)
flow.py     the `checkin` FastAGI route (12340, and roll-calls dialled out): subject number or registered
            extension, PIN, window check, recorded liveness challenge
service.py  the controller's part: the scheduler (reminders, windows opening and closing, misses),
            alerts and escalation, roll-calls in sequence, education attendance from room events;
            `CheckinEvent` / `CheckinAlertEvent` on the bus
report.py   the monthly report per office as CSV (UTF-8 with BOM) and XLSX
settings.py `[checkin]` settings
"""
