"""Automatic call distributor (ACD): pure decisions of who answers which waiting call; no I/O, no clock."""

from huiyan.acd.distributor import Distributor
from huiyan.acd.errors import AcdError, InvalidArgument, InvalidTransition, UnknownAgent, UnknownCall, UnknownQueue
from huiyan.acd.events import (
    AcdEvent,
    AgentAutoPaused,
    AgentPausePending,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRefused,
    CallRelaxed,
    CallTimedOut,
    CallTransferred,
    Happening,
    OfferCancelled,
    OfferFailed,
    OfferTimedOut,
    WrapUpEnded,
)
from huiyan.acd.model import (
    AgentConfig,
    AgentState,
    AgentStats,
    AgentView,
    CallState,
    CallView,
    EnqueueResult,
    JoinEmpty,
    Membership,
    Offer,
    OfferResult,
    QueueConfig,
    QueueStats,
    Stats,
    Strategy,
)

__all__ = [
    "Distributor",
    # settings and values
    "QueueConfig", "AgentConfig", "Membership", "Strategy", "JoinEmpty", "AgentState", "CallState",
    "OfferResult", "Offer", "EnqueueResult", "AgentView", "CallView", "Stats", "QueueStats", "AgentStats",
    # errors
    "AcdError", "UnknownQueue", "UnknownAgent", "UnknownCall", "InvalidTransition", "InvalidArgument",
    # events
    "AcdEvent", "Happening", "CallQueued", "CallRefused", "CallOffered", "OfferFailed", "CallAnswered",
    "CallAbandoned", "CallCompleted", "CallTransferred", "CallRelaxed", "AgentStateChanged",
    "AgentPausePending", "OfferCancelled", "OfferTimedOut", "CallOverflowed", "CallTimedOut",
    "AgentAutoPaused", "WrapUpEnded",
]  # fmt: skip
