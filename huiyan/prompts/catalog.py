"""The voice prompt catalogue (语音提示): names, their Chinese and English texts, and where their files live."""

from __future__ import annotations

from pathlib import Path

LANGS: tuple[str, ...] = ("zh", "en")
FALLBACK_LANG = "en"

# name -> (zh_text, en_text). Numbers meant to be read digit by digit are written as digits in words,
# because both voices read "12348" as "twelve thousand ..." / "一万两千...".
PROMPTS: dict[str, tuple[str, str]] = {
    "welcome": (
        "欢迎致电一二三四八公共法律服务热线。",
        "Welcome to the 1 2 3 4 8 public legal service hotline.",
    ),
    "recorded": (
        "本次通话将被录音录像。",
        "This call will be recorded on audio and video.",
    ),
    "please_wait": (
        "请稍候，正在为您转接。",
        "Please hold, we are connecting you.",
    ),
    # Said around a number prompt: "您前面还有 <n> 位" / "There are <n> callers ahead of you".
    "position_prefix": ("您前面还有", "There are"),
    "position_suffix": ("位", "callers ahead of you."),
    # "预计等待时间约 <n> 分钟" / "Your estimated waiting time is about <n> minutes".
    "estimated_wait": ("预计等待时间约", "Your estimated waiting time is about"),
    "minutes": ("分钟", "minutes."),
    "goodbye": (
        "感谢您的来电，再见。",
        "Thank you for calling. Goodbye.",
    ),
    "unavailable": (
        "服务暂不可用，请稍后再拨。",
        "The service is temporarily unavailable. Please call again later.",
    ),
    "invalid": (
        "输入有误，请重新输入。",
        "Invalid input. Please try again.",
    ),
    "menu": (
        "法律咨询请按一，法律援助请按二，调解受理请按三。",
        "For legal advice, press 1. For legal aid, press 2. For mediation, press 3.",
    ),
    # Rooms (meetings, mediation sessions, dispatch): huiyan.rooms.flow
    "room_pin": (
        "请输入会议密码，以井号键结束。",
        "Please enter the meeting PIN, followed by the hash key.",
    ),
    "room_joining": ("正在进入会议。", "You are joining the meeting."),
    "room_locked": ("会议已锁定，暂时无法加入。", "The meeting is locked. You cannot join now."),
    "room_full": ("会议人数已满，暂时无法加入。", "The meeting is full. You cannot join now."),
    "room_closed": ("该会议当前不在开放时间。", "This meeting is not open at this time."),
    "room_recorded": ("本次会议将被录音。", "This meeting will be recorded."),
    "room_ended": ("会议已结束，再见。", "The meeting has ended. Goodbye."),
    # Remote mediation (huiyan.mediation): heard by everyone joining a mediation room, before the join.
    "mediation_pin": (
        "您好，这里是远程调解。请输入调解案件密码，以井号键结束。",
        "Remote mediation. Please enter your case PIN, then press the hash key.",
    ),
    "mediation_notice": (
        "本次调解全程录音录像，请文明表达。",
        "This mediation session is recorded from start to finish. Please speak calmly and respectfully.",
    ),
    # Community-correction check-ins (huiyan.checkin.flow): 12340 and officers' roll-calls.
    "checkin_subject": (
        "社区矫正视频点验。请输入您的矫正对象编号，以井号键结束。",
        "Community correction check-in. Please enter your subject number, then press the hash key.",
    ),
    "checkin_pin": (
        "社区矫正视频点验。请输入您的点验密码，以井号键结束。",
        "Community correction check-in. Please enter your check-in PIN, then press the hash key.",
    ),
    "checkin_pin_retry": (
        "密码错误，请重新输入点验密码，以井号键结束。",
        "Wrong PIN. Please enter your check-in PIN again, then press the hash key.",
    ),
    "checkin_unknown": ("未找到该矫正对象编号，再见。", "That subject number was not found. Goodbye."),
    "checkin_rejected": (
        "密码错误次数过多，本次点验未通过，已通知您的矫正工作人员。",
        "Too many wrong PINs. This check-in has failed and your officer has been told.",
    ),
    "checkin_no_window": (
        "现在不在您的点验时段内，本次呼叫已记录，再见。",
        "No check-in window is open for you now. This call has been recorded. Goodbye.",
    ),
    "checkin_recorded": ("本次点验全程录音录像。", "This check-in is recorded from start to finish."),
    "checkin_challenge": ("请记住以下数字：", "Remember these digits:"),
    "checkin_speak": ("请现在大声读出这些数字。", "Now read the digits aloud."),
    "checkin_done": ("点验完成，谢谢，再见。", "Check-in complete. Thank you, goodbye."),
}

# Digits read out one by one (the check-in's liveness challenge).
for _d, _zh in enumerate("零一二三四五六七八九"):
    PROMPTS[f"digit_{_d}"] = (_zh, ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                    "nine")[_d])


MAX_SPOKEN_NUMBER = 30  # queue positions above this are said as "more than 30"
_ZH_DIGITS = "零一二三四五六七八九"


def zh_number(n: int) -> str:
    """1..99 in Chinese numerals, as spoken: 十, 十一, 二十, 二十三."""
    if not 1 <= n <= 99:
        raise ValueError(f"{n} is outside 1..99")
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _ZH_DIGITS[tens] + "十")
    return head + (_ZH_DIGITS[ones] if ones else "")


# Numbers for position announcements, as prompts of their own: Asterisk's SayNumber needs digit files
# in the channel's language, which no Debian package has for Mandarin.
for _n in range(1, MAX_SPOKEN_NUMBER + 1):
    PROMPTS[f"number_{_n}"] = (zh_number(_n), str(_n))
PROMPTS["number_many"] = (f"{zh_number(MAX_SPOKEN_NUMBER)}多", f"more than {MAX_SPOKEN_NUMBER}")


def number_prompt(n: int) -> str:
    """The prompt name that says `n` (a count of callers ahead, a number of minutes)."""
    return f"number_{n}" if 1 <= n <= MAX_SPOKEN_NUMBER else "number_many"


def prompt_text(name: str, lang: str) -> str:
    """The text of prompt `name` in `lang` ("zh" or "en")."""
    zh, en = PROMPTS[name]
    if lang == "zh":
        return zh
    if lang == "en":
        return en
    raise ValueError(f"unknown prompt language {lang!r}; expected one of {LANGS}")


def prompt_file(sounds_dir: Path, name: str, lang: str) -> Path:
    """The .wav file of one prompt in one language."""
    return Path(sounds_dir) / lang / "huiyan" / f"{name}.wav"


def prompt_path(sounds_dir: Path, name: str, lang: str = "zh") -> str:
    """Absolute path without extension, as Asterisk's Playback / STREAM FILE want it.

    Falls back to English when the requested language's file is absent, so a half-provisioned node still
    says something rather than nothing.
    """
    if name not in PROMPTS:
        raise KeyError(f"unknown prompt {name!r}; known prompts: {', '.join(sorted(PROMPTS))}")
    if lang not in LANGS:
        raise ValueError(f"unknown prompt language {lang!r}; expected one of {LANGS}")
    base = Path(sounds_dir).expanduser().resolve()
    chosen = lang
    if not prompt_file(base, name, lang).exists() and prompt_file(base, name, FALLBACK_LANG).exists():
        chosen = FALLBACK_LANG
    return str(prompt_file(base, name, chosen).with_suffix(""))


def prompt_language(channel_language: str | None) -> str:
    """Map a channel's language (agi_language / CHANNEL(language)) to a prompt language."""
    lang = (channel_language or "").strip().lower()
    # Asterisk languages may carry a region ("en_GB"); anything not English is served in Chinese.
    if lang == "en" or lang.startswith(("en_", "en-")):
        return "en"
    return "zh"
