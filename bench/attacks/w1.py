# (w) updates naming T topics, to N subscribers of all T (each keyed on every one of them):
# what a publish costs the hub (its answer time, the hub's CPU per publish), every delivery counted.
# usage: python3 w1.py PORT N T PUBLISHES   e.g. python3 w1.py 18700 5000 50 20
import asyncio,os,statistics,sys; sys.path.insert(0,os.path.dirname(os.path.abspath(__file__))); from common import *
port,N,T,PUBS=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]),int(sys.argv[4])
topics=[f'https://example.com/t/{i}' for i in range(T)]

async def subscriber(opened,got):
    r,w=await asyncio.open_connection('127.0.0.1',port)
    w.write(sub_req(port,exact=topics)); await w.drain()
    head=await r.readuntil(b'\r\n\r\n')
    assert b' 200 ' in head.split(b'\r\n')[0],head[:200]
    opened[0]+=1
    while data:=await r.read(65536): got[0]+=data.count(b'data:')

async def main(h):
    opened=[0]; got=[0]; tasks=[]
    for i in range(N):
        tasks.append(asyncio.create_task(subscriber(opened,got)))
        if i%200==199: await asyncio.sleep(0.05)
    while opened[0]<N: await asyncio.sleep(0.1)
    p=Pub(port); times=[]; t0=h.ticks()
    for k in range(PUBS):
        st,dt,b=await asyncio.to_thread(p.pub,topics,'hello'); assert st==200,b
        times.append(dt*1000)
        deadline=time.time()+20
        while got[0]<(k+1)*N and time.time()<deadline: await asyncio.sleep(0.01)
    cpu=(h.ticks()-t0)/os.sysconf('SC_CLK_TCK')/PUBS*1000
    print(f'{os.path.basename(BIN)} N={N} T={T}: publish answer p50 {statistics.median(times):.2f} ms, max {max(times):.2f} ms;'
          f' hub CPU per publish {cpu:.1f} ms; delivered {got[0]} of {PUBS*N}')
    for t in tasks: t.cancel()

h=Hub(port,'--max-streams','30000','--max-new-streams-per-sec','100000','--max-matchers','100')
try: asyncio.run(main(h))
finally: h.stop()
