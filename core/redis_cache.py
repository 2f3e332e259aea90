"""Django's Redis cache, with fewer of the web process's CPU cycles per call (the API's
rate limit makes two calls a request; bench/api_cpu.py):
- one redis-py client per connection pool: Django builds a new one for every call, and
  its constructor (a table of reply callbacks) costs more CPU than the round trip. A
  client is safe to share between threads: each command takes a connection from the pool;
- `incr` in one round trip, not two (EXISTS, then INCRBY). It also cannot create a key
  that expired between the two: one that would never expire."""

from django.core.cache.backends import redis

_INCR_IF_THERE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
"""


class RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))  # a pool lives as long as this object
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client

    def incr(self, key, delta):
        client = self.get_client(key, write=True)
        value = client.eval(_INCR_IF_THERE, 1, key, delta)
        if value is None:
            raise ValueError(f"Key '{key}' not found.")  # as Django's own
        return value


class RedisCache(redis.RedisCache):
    """CACHE_URL=redis://...: settings put this in place of Django's own."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
