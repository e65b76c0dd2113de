"""Abuse limits: requests per minute and open streams per user, model tokens per tenant and day.

A package of its own inside `service.chatkit`: one concern that several places apply (the
ChatKit route admits requests and streams, the ChatKit server's agent runs charge tokens), it
answers with ChatKit failures and wraps the stream observer, so it lives in the ChatKit layer,
while the route keeps only the calls. The counting itself is the `limits` library's, in process
memory or, with `REDIS_URL`, in Redis shared by every replica; when Redis cannot be reached the
limits are not enforced (fail open).
"""

from service.chatkit.limits.abuse import AbuseLimits, StreamSlot, create_limits
from service.chatkit.limits.budget import TokenBudgetHooks

__all__ = ["AbuseLimits", "StreamSlot", "TokenBudgetHooks", "create_limits"]
