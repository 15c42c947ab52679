"""requests-sse (PyPI) as a hub's subscriber, run by tests/clients.rs:

    python requests_sse_client.py URL TOKEN COUNT

Subscribes to URL with the token as a bearer header and prints one JSON line, flushed,
for each update: {"id", "data"}; exits after COUNT updates. On a broken stream requests-sse reconnects by itself, sending
Last-Event-ID (the last id it saw), after the stream's `retry:`."""

import json
import sys

from requests_sse import EventSource

url, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
headers = {"Authorization": f"Bearer {token}"}
seen = 0
with EventSource(url, headers=headers, timeout=30, max_connect_retry=10) as source:
    for event in source:
        if event.type != "message":
            continue
        print(json.dumps({"id": event.last_event_id, "data": event.data}), flush=True)
        seen += 1
        if seen == count:
            break
