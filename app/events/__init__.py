"""Run events on Redis pub/sub: channel names, the wire format, publishing and the API's subscriber hub."""
