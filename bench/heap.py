#!/usr/bin/env python3
"""The heap an idle SSE connection holds, by allocation site (issue 31).

    cargo build -p bench --release --features dhat     (its own target dir is fine)
    python3 bench/heap.py BENCH_BINARY SERVER [CLIENTS]
    python3 bench/heap.py --report dhat-heap.json CLIENTS SERVER

Starts `BENCH_BINARY serve SERVER` (built with the dhat feature), opens CLIENTS idle
streams (1,000 by default) on plain HTTP/1.1, waits for them to settle, stops the server
with SIGTERM (it writes dhat-heap.json as it exits), and reads the heap at its peak (all
streams open): every allocation site that holds at least one block per two connections,
in bytes per connection, grouped by the first frame that names a crate of ours, salvo,
hyper, hyper-util or tokio."""
import asyncio, json, os, re, signal, subprocess, sys, tempfile, collections

def main():
    if sys.argv[1] == "--report":  # an earlier run's dhat-heap.json
        return report(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    binary, server = sys.argv[1], sys.argv[2]
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    work = tempfile.mkdtemp(prefix="heap-")
    proc = subprocess.Popen([binary, "serve", server, "--port", "0"], cwd=work,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "RUST_LOG": "error"})
    line = proc.stdout.readline().strip()
    host, port = line.removeprefix("listening on http://").rsplit(":", 1)
    path = "/.well-known/mercure?match=urn%3Aa" if server in ("topics",) else "/events"
    asyncio.run(hold(host, int(port), path, clients, proc))
    proc.wait(timeout=60)
    report(os.path.join(work, "dhat-heap.json"), clients, server)

async def hold(host, port, path, n, proc):
    streams = []
    for i in range(n):
        r, w = await asyncio.open_connection(host, port)
        w.write(f"GET {path} HTTP/1.1\r\nhost: bench\r\naccept: text/event-stream\r\n\r\n".encode())
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"refused: {head[:40]!r}")
        streams.append((r, w))
    await asyncio.sleep(2)  # settled: the peak is now
    proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(1)
    for _, w in streams:
        w.close()

# Which part a frame belongs to, by the source path dhat gives (crate-relative for
# dependencies, so a few paths are recognised by their shape).
PARTS = [("http/body/res.rs", "ours (the stream body, boxed by salvo)"),
         ("future/future/mod.rs", "salvo (the connection future, boxed)"),
         ("collections/vec_deque", "hyper (write queue)"),
         ("shared/src/", "ours (sse_shared)"), ("sse-topics/src/", "ours (sse_topics)"),
         ("sse-resume/src/", "ours (sse_resume)"), ("bench/src/", "bench"),
         ("salvo_core", "salvo"), ("src/conn/", "salvo"), ("src/fuse", "salvo"),
         ("src/server.rs", "salvo"), ("src/service.rs", "salvo"),
         ("proto/h1/", "hyper"), ("proto/h2/", "hyper"), ("common/buf.rs", "hyper"),
         ("server/conn/", "hyper / hyper-util"), ("src/rt/", "hyper-util"),
         ("src/header/", "http"), ("runtime/", "tokio"), ("src/util/", "tokio")]
# Sources that only allocate, wherever the allocation comes from.
PLUMBING = ("dhat", "alloc/src", "src/raw_vec", "src/vec/", "src/boxed", "bytes-1",
            "src/alloc.rs", "hashbrown", "src/sync.rs", "core/src")

def site(frames):
    """The first frame past the allocator's plumbing, and the part it belongs to."""
    for frame in frames:
        text = re.sub(r"^0x[0-9a-f]+: ", "", frame)
        source = text[text.rfind("(") + 1:] if "(" in text else text
        if any(p in source for p in PLUMBING) or text.startswith("__rust"):
            continue
        for key, name in PARTS:
            if key in source:
                return name, short(text)
        return "other", short(text)
    return "other", "?"

def short(frame):
    while re.search(r"<[^<>]*>", frame):
        frame = re.sub(r"<[^<>]*>", "", frame)
    return frame[:100]

def report(path, n, server):
    data = json.load(open(path))
    ftbl = data["ftbl"]
    bytes_at, blocks_at = collections.Counter(), collections.Counter()
    for pp in data["pps"]:
        key = site([ftbl[i] for i in pp["fs"]])
        bytes_at[key] += pp["gb"]
        blocks_at[key] += pp["gbk"]
    # Per connection: the sites that hold a block per two connections or more.
    per = {k: b / n for k, b in bytes_at.items() if blocks_at[k] * 2 >= n}
    rest = sum(b for k, b in bytes_at.items() if k not in per)
    by_part = collections.Counter()
    for (name, _), b in per.items():
        by_part[name] += b
    total = sum(per.values())
    print(f"# Heap per idle connection, `{server}`, {n} streams (dhat, at the peak)\n")
    print(f"Per connection: {total / 1024:.1f} KiB allocated (capacity, not pages touched) "
          f"in sites holding a block per two connections or more; {rest / 1024:.0f} KiB "
          f"elsewhere in the process.\n")
    print("| part | bytes per connection |\n|---|---:|")
    for name, b in by_part.most_common():
        print(f"| {name} | {b:,.0f} |")
    print("\n| bytes per connection | blocks | part | site |\n|---:|---:|---|---|")
    for (name, frame), b in sorted(per.items(), key=lambda kv: -kv[1])[:20]:
        print(f"| {b:,.0f} | {blocks_at[(name, frame)] / n:.1f} | {name} | `{frame}` |")

main()
