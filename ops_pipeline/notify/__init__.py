"""Notifications: an outbox written with the state change, and a dispatcher that delivers it."""

from ops_pipeline.notify.dispatcher import DispatchResult, dispatch
from ops_pipeline.notify.outbox import Notification, enqueue

__all__ = ["DispatchResult", "Notification", "dispatch", "enqueue"]
