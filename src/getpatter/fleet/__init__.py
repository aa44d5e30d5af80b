"""Shared state for several getpatter instances behind one phone number, on Redis (extra ``redis``).

:mod:`.redis_link` is the connection and its failure rules; each shared part has its own module.
Nothing here is imported unless ``redis_url`` / ``PATTER_REDIS_URL`` is set.
"""
