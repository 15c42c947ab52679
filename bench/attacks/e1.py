# (e) private updates: anonymous and partially-granted subscribers with expression patterns (blocking path) and plain ones
import os,sys,time,re; sys.path.insert(0,os.path.dirname(os.path.abspath(__file__))); from common import *; from lat import *
port=int(sys.argv[1]); h=Hub(port)
try:
    T=tok(actions=("subscribe",),topics=[{"match":"/books/:id(\\d*0)","match_type":"urlpattern"}])
    rs={'anon-expr':Reader('anon-expr',open_sub(port,sub_req(port,patterns=['/books/:id(\\d+)']))),
        'anon-star':Reader('anon-star',open_sub(port,sub_req(port,exact=['*']))),
        'tok-expr':Reader('tok-expr',open_sub(port,sub_req(port,patterns=['/books/:id(\\d+)'],token=T))),
        'tok-plain':Reader('tok-plain',open_sub(port,sub_req(port,patterns=['/books/:id'],token=T)))}
    for r in rs.values(): r.start()
    time.sleep(0.3); p=Pub(port)
    for i in range(1,201):
        p.pub([f'/books/{i}'] + ([f'/books/{i*10}'] if i%7==0 else []),data=f'ts={time.time()} seq={i}',private='on')
    time.sleep(2)
    rs['late-tok-expr']=Reader('late',open_sub(port,sub_req(port,patterns=['/books/:id(\\d+)'],token=T,extra='&last_event_id=earliest'))); rs['late-tok-expr'].start(); time.sleep(2)
    exp=[i for i in range(1,201) if i%10==0 or i%7==0]
    for k,r in rs.items():
        r.stop=True; want=[] if k.startswith('anon') else exp
        print(k,'OK' if r.seqs==want else f'LEAK/MISMATCH got {r.seqs[:10]}..({len(r.seqs)}) want {len(want)}')
finally: h.stop()
