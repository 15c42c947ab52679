# (w) updates naming T topics, to N subscribers of all T (each keyed on every one of them):
# what a publish costs the hub (its answer time, the hub's CPU per publish), every delivery counted.
# usage: python3 w1.py PORT N T PUBLISHES   e.g. python3 w1.py 18700 5000 50 20
import asyncio, base64, hashlib, hmac, json, os, statistics, subprocess, sys, time, urllib.parse

BIN = os.environ.get("HUB_BIN", "target/release/sse-topics")
PORT, N, T, PUBS = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
SECRET = "bench-secret-bench-secret-bench-secret"
topics = [f"https://example.com/t/{i}" for i in range(T)]

def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def token():
    h = b64(json.dumps({"alg": "HS256", "typ": "at+jwt"}).encode())
    p = b64(json.dumps({"authorization_details": [{"type": "https://mercure.rocks/authorization-detail", "actions": ["publish"], "topics": [{"match": "*"}]}], "exp": int(time.time()) + 3600, "aud": "bench"}).encode())
    s = b64(hmac.new(SECRET.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest())
    return f"{h}.{p}.{s}"

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]), int(f[12])

async def subscriber(ready, got):
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    q = "&".join("match=" + urllib.parse.quote(t, safe="") for t in topics)
    w.write(f"GET /.well-known/mercure?{q} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head[:200]
    ready()
    while True:
        data = await r.read(65536)
        if not data: return
        got[0] += data.count(b"\ndata:") + data.count(b"data:") - data.count(b"\ndata:")

async def main():
    env = dict(os.environ, RUST_LOG="warn")
    proc = subprocess.Popen([BIN, "--port", str(PORT), "--jwt-secret", SECRET, "--max-streams", "30000",
        "--max-streams-per-ip", "30000", "--max-new-streams-per-sec", "100000", "--max-matchers", "100", "--jwt-audience", "bench"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", PORT); w.close(); break
        except OSError: await asyncio.sleep(0.05)
    assert proc.poll() is None, 'the server did not start'
    try:
        await run(proc)
    finally:
        proc.terminate(); proc.wait()

async def run(proc):
    opened = [0]; got = [0]
    tasks = []
    for i in range(N):
        tasks.append(asyncio.create_task(subscriber(lambda: opened.__setitem__(0, opened[0] + 1), got)))
        if i % 200 == 199: await asyncio.sleep(0.05)
    while opened[0] < N: await asyncio.sleep(0.1)
    r, w = await asyncio.open_connection("127.0.0.1", PORT)
    auth = token()
    body = "&".join("topic=" + urllib.parse.quote(t, safe="") for t in topics) + "&data=hello"
    times = []
    c0 = cpu(proc.pid)
    for k in range(PUBS):
        req = (f"POST /.well-known/mercure HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {auth}\r\n"
               f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n{body}")
        t0 = time.perf_counter()
        w.write(req.encode()); await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
        await r.readexactly(length)
        times.append((time.perf_counter() - t0) * 1000)
        assert b" 200 " in head.split(b"\r\n")[0], head
        deadline = time.time() + 20
        while got[0] < (k + 1) * N and time.time() < deadline: await asyncio.sleep(0.01)
    c1 = cpu(proc.pid)
    tick = os.sysconf("SC_CLK_TCK")
    times.sort()
    print(f"{os.path.basename(BIN)} N={N} T={T}: publish answer p50 {statistics.median(times):.2f} ms, max {times[-1]:.2f} ms;"
          f" server CPU per publish {(c1[0]-c0[0]+c1[1]-c0[1])/tick/PUBS*1000:.1f} ms (user {(c1[0]-c0[0])/tick/PUBS*1000:.1f});"
          f" delivered {got[0]} of {PUBS*N}")
    for t in tasks: t.cancel()

asyncio.run(main())
