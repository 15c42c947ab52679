# (d) delivery exactness for expression subscribers while attackers churn the answers cache (quick path)
# and hold the blocking semaphore; includes live and replay (earliest) legit subscribers.
import os,sys,time,threading,re; sys.path.insert(0,os.path.dirname(os.path.abspath(__file__))); from common import *; from lat import *
port=int(sys.argv[1]); NC=int(sys.argv[2]); NB=int(sys.argv[3]); E=int(sys.argv[4]); R=float(sys.argv[5])
h=Hub(port)
chars='yxwvutsrqponmlkjihgfedcba'
try:
    held=[]
    for n in range(NC):  # cache churners
        s=open_sub(port,sub_req(port,patterns=[f'/:c{n}x{i}' for i in range(50)]),src=f'127.0.0.{2+n%250}'); s.recv(4096); held.append(s)
    for a in range(NB):  # blocking-path holders, per address ~1 MiB of weight
        for j in range(0,135,5):
            s=open_sub(port,sub_req(port,patterns=[f'/:x([!-{chars[(j+i)%25]}]*[!-{chars[(j+i)%25]}]{{0,{136-(j+i)//25}}}z{chr(65+a%26)}{chr(65+a//26)})' for i in range(5)]),src=f'127.0.1.{2+a}')
            d=s.recv(4096)
            if b'200 OK' not in d[:20]: s.close(); break
            held.append(s)
    print('attack streams',len(held),'mem',h.mem(),flush=True)
    specs={'A':dict(patterns=['/books/:id(\\d+)']),
           'B':dict(patterns=['/books/:id(\\d+)','/authors/:id','/x/:y([a-z]+)/z'],exact=['/special']),
           'C':dict(patterns=['/books/:id(\\d+)','/authors/:id(\\d+)','/a/:b','/c/:d(\\d\\d)','/e/*']),
           'P':dict(patterns=['/books/:id'])}
    import random; random.seed(1)
    def topics_for(i):
        r=i%7
        return [[f'/books/{i}'],[f'/books/b{i}'],[f'/authors/{i}'],[f'/x/{"abc"[i%3]*(1+i%4)}/z',f'/x/1{i}/z'],[f'/zzz/{i}',f'/books/{i}x',f'/c/{i%100:02d}'],['/special',f'/nope/{i}'],[f'/e/{i}/f',f'/books/{i}']][r]
    def wants(spec,topics):
        import re
        for t in topics:
            for p in spec.get('exact',[]):
                if t==p: return True
            for p in spec['patterns']:
                rx='^'+re.escape(p).replace(r'\(\\d\+\)','').replace(r':id\(\\d\+\)','([0-9]+)')+'$'
        return None
    # expected by python reimplementation of these specific patterns:
    pyre={'/books/:id(\\d+)':r'/books/[0-9]+','/authors/:id':r'/authors/[^/]+','/x/:y([a-z]+)/z':r'/x/[a-z]+/z','/authors/:id(\\d+)':r'/authors/[0-9]+','/a/:b':r'/a/[^/]+','/c/:d(\\d\\d)':r'/c/[0-9][0-9]','/e/*':r'/e/.*','/books/:id':r'/books/[^/]+'}
    def expected(spec,topics):
        return any(t in spec.get('exact',[]) for t in topics) or any(re.fullmatch(pyre[p],t) for p in spec['patterns'] for t in topics)
    readers={}
    for k,sp in specs.items():
        for m in range(3):
            readers[f'{k}{m}']=(sp,Reader(f'{k}{m}',open_sub(port,sub_req(port,**sp),src='127.0.0.1',timeout=300)))
    for _,r in readers.values(): r.start()
    time.sleep(0.5)
    p=Pub(port); t0=time.time(); sent=[]
    for i in range(1,E+1):
        tp=topics_for(i); st,l,b=p.pub(tp,data=f'ts={time.time()} seq={i}'); assert st==200; sent.append((i,tp))
        if i==E//2:
            for k,sp in specs.items():
                readers[f'{k}R']=(sp,Reader(f'{k}R',open_sub(port,sub_req(port,extra='&last_event_id=earliest',**sp),src='127.0.0.1',timeout=300))); readers[f'{k}R'][1].start()
        time.sleep(max(0,t0+i/R-time.time()))
    print('published',E,'in',round(time.time()-t0,1),'s; waiting for delivery',flush=True)
    deadline=time.time()+90; bad=0
    while time.time()<deadline:
        done=all(len(r.seqs)>=sum(expected(sp,tp) for i,tp in sent) for sp,r in readers.values())
        if done: break
        time.sleep(1)
    for name,(sp,r) in sorted(readers.items()):
        r.stop=True
        exp=[i for i,tp in sent if expected(sp,tp)]
        ok= r.seqs==exp
        if not ok:
            bad+=1; missing=sorted(set(exp)-set(r.seqs)); extra=sorted(set(r.seqs)-set(exp))
            print(' MISMATCH',name,'got',len(r.seqs),'expected',len(exp),'missing',missing[:10],'extra',extra[:10],'dups',len(r.seqs)-len(set(r.seqs)),'resets',r.resets)
        else: print(' ok',r.summary())
    print('mismatches',bad,'mem',h.mem())
finally: h.stop()
