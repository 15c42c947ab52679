# (a)/(c) anonymous replay (last_event_id=earliest) with 50 weight-0 URL patterns that pass every topic's
# pathname literal but fail later (search part): all answered on the runtime's workers (quick path), no regex.
import os,sys,time,threading; sys.path.insert(0,os.path.dirname(os.path.abspath(__file__))); from common import *; from lat import *
port=int(sys.argv[1]); T=int(sys.argv[2]); N=int(sys.argv[3]); kind=sys.argv[4]; TL=int(sys.argv[5]) if len(sys.argv)>5 else 30
h=Hub(port)
try:
    p=Pub(port); k=0
    for i in range(1000):
        topics=[('/books/%d/t%d/'%(i,j)).ljust(TL,'x') for j in range(T)]
        st,l,b=p.pub(topics,data='x'); assert st==200,b
    print('history: 1000 events x',T,'topics of',TL,'B; mem',h.mem(),flush=True)
    if kind=='search': pats=[f'/*?q{i}' for i in range(50)]
    elif kind=='host': pats=[f'http://h{i}.example/*' for i in range(50)]
    elif kind=='seg': pats=[f'/:a{i}' for i in range(50)]       # SingleCapture: fails at '/' filter
    elif kind=='plain': pats=['/books/:id']
    hl=[]; pl=[]; stop=False
    rd=Reader('ordinary exact /live/x',open_sub(port,sub_req(port,exact=['/live/x']),src='127.0.0.1',timeout=120)); rd.start()
    def probe():
        pp=Pub(port); n=0
        while not stop:
            n+=1; hl.append(healthz(port)); st,l,b=pp.pub('/live/x',data=f'ts={time.time()} seq={n}'); pl.append(l); time.sleep(0.02)
    th=threading.Thread(target=probe); th.start()
    time.sleep(0.3)
    c0=h.ticks(); t0=time.time(); socks=[]
    for n in range(N):
        pp=[x+('' if n==0 else '') for x in pats]
        socks.append(open_sub(port,sub_req(port,patterns=pp,extra='&last_event_id=earliest'),src=f'127.0.0.{2+n%250}'))
    # wait until CPU goes idle
    last=h.ticks(); idle=0
    while time.time()-t0<120:
        time.sleep(0.5); t=h.ticks()
        if t-last<=2: idle+=1
        else: idle=0
        last=t
        if idle>=2: break
    el=time.time()-t0; cpu=(h.ticks()-c0)/100
    stop=True; th.join()
    print(f'{N} anonymous replays, kind={kind}: hub cpu {cpu:.2f}s ({cpu/N*1000:.0f} ms per request) over {el:.1f}s; healthz during: {pct(hl)} (n={len(hl)}); mem {h.mem()}')
    st,l,b=p.pub('/books/x'); print('publish after',st,round(l*1000,1),'ms; publish during:',pct(pl)); time.sleep(1); rd.stop=True; print('  ',rd.summary())
finally: h.stop()
