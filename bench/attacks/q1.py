# quick (inline, under the read lock) path cost: N live streams each with 50 weight-0 URL patterns /:a<i> that pass every
# topic's pathname literal part and are answered by url_matches + answers-cache insert; publisher sends T topics/update.
import os,sys,time,threading; sys.path.insert(0,os.path.dirname(os.path.abspath(__file__))); from common import *; from lat import *
port=int(sys.argv[1]); N=int(sys.argv[2]); T=int(sys.argv[3]); R=float(sys.argv[4]); D=float(sys.argv[5]); kind=sys.argv[6]
h=Hub(port)
try:
    held=[]; t0=time.time()
    for n in range(N):
        pats={'seg':[f'/:a{n}x{i}' for i in range(50)],'segshared':[f'/:a{i}' for i in range(50)],'plain':['/books/:id']}[kind]
        s=open_sub(port,sub_req(port,patterns=pats),src=f'127.0.0.{2+n%250}'); d=s.recv(4096); assert b"200 OK" in d,(n,d[-250:]); held.append(s)
    print(f'{N} streams kind={kind} setup {time.time()-t0:.1f}s mem {h.mem()}',flush=True)
    rd=Reader('ordinary exact',open_sub(port,sub_req(port,exact=['/live/x/0']),src='127.0.0.1',timeout=120)); rd.start()
    time.sleep(0.5)
    p=Pub(port); pl=[]; hl=[]; c0=h.ticks(); t0=time.time(); n=0
    while time.time()-t0<D:
        n+=1
        st,l,b=p.pub([f'/live/x/{j}' if j==0 else f'/live/{n}/{j}' for j in range(T)],data=f'ts={time.time()} seq={n}'); pl.append(l)
        hl.append(healthz(port))
        time.sleep(max(0,t0+n/R-time.time()))
    el=time.time()-t0; cpu=(h.ticks()-c0)/100; time.sleep(2)
    print(f'published {n} x {T} topics in {el:.1f}s: hub cpu {cpu:.1f}s = {cpu/n*1000:.1f} ms per publish; publish {pct(pl)}; healthz {pct(hl)}; mem {h.mem()}')
    rd.stop=True; print('  ',rd.summary())
finally: h.stop()
