# (b) memory per stream: replay of a history of large updates through the taken path (filter_taken ignores MAX_BATCH)
import os,sys,time; sys.path.insert(0,os.path.dirname(os.path.abspath(__file__))); from common import *
port=int(sys.argv[1]); N=int(sys.argv[2]); size=int(sys.argv[3]); mode=sys.argv[4] if len(sys.argv)>4 else 'earliest'
h=Hub(port)
try:
    p=Pub(port)
    for i in range(80):
        st,l,b=p.pub(f'/big/{i}','A'*size)
        assert st==200,(st,b)
    print('history published; mem',h.mem())
    socks=[]
    t0=h.ticks()
    extra='&last_event_id=earliest' if mode=='earliest' else ''
    for i in range(N):
        socks.append(open_sub(port,sub_req(port,exact=['*'],extra=extra),src=f'127.0.0.{2+i%250}',rcvbuf=4096))
        if (i+1)%50==0:
            time.sleep(0.5); print(i+1,'streams; RSS/HWM MB',h.mem(),'cpu ticks',h.ticks()-t0,flush=True)
    time.sleep(2); r=h.mem(); print('final',N,'streams RSS/HWM MB',r,'per stream KB ~',(r[0]*1024)//N)
    print('healthz',round(healthz(port),4))
    for s in socks: s.close()
    time.sleep(1); print('after close',h.mem())
finally:
    h.stop()
