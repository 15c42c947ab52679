# (c) blocking-semaphore starvation: A addresses each holding ~1 MiB of expression weight (distinct patterns),
# legit subscribers: exact, plain /books/:id, and /books/:id(\d+); publisher at R/s with topics of length L.
import os,sys,time,threading; sys.path.insert(0,os.path.dirname(os.path.abspath(__file__))); from common import *; from lat import *
port=int(sys.argv[1]); A=int(sys.argv[2]); L=int(sys.argv[3]); R=float(sys.argv[4]); D=float(sys.argv[5]); prefix=sys.argv[6] if len(sys.argv)>6 else '/'
h=Hub(port)
chars='yxwvutsrqponmlkjihgfedcba'
def pat(a,j):  # distinct per (address, j)
    c=chars[j%25]; K=140-(j//25)%8-(a%5)
    return f'{prefix}:x([!-{c}]*[!-{c}]{{0,{K}}}z{"~"*(a//5) if False else ""})' if a<40 else None
# make patterns distinct per address using different literal tail inside the group, e.g. z followed by a-specific ascii
def pat(a,j):
    c=chars[j%25]; K=136-(j//25)%8
    tail=''.join(chr(0x41+(a>>(4*k))%16) for k in range(2))  # 'AA'..'PP' -> 256 distinct
    return f'{prefix}:x([!-{c}]*[!-{c}]{{0,{K}}}z{tail})'
try:
    held=[]; t0=time.time(); c0=h.ticks(); refused=0
    for a in range(A):
        src=f'127.0.1.{a+2}' if False else f'127.0.{1+a//250}.{2+a%250}'
        j=0
        while True:
            s=open_sub(port,sub_req(port,patterns=[pat(a,j+i) for i in range(5)]),src=src); d=s.recv(4096); j+=5
            if b'200 OK' not in d.split(b'\r\n')[0]:
                s.close(); refused+=1; break
            held.append(s)
    print(f'attackers: {A} addresses, {len(held)} streams, {len(held)*5} patterns; setup {time.time()-t0:.1f}s cpu {(h.ticks()-c0)/100:.1f}s; mem {h.mem()}',flush=True)
    time.sleep(1)
    topic=lambda n: '/books/'+str(n).rjust(max(1,L-7),'1')
    readers=[Reader('exact',open_sub(port,sub_req(port,exact=[topic(n) for n in range(1,40)]),src='127.0.0.1')),
             Reader('plain /books/:id',open_sub(port,sub_req(port,patterns=['/books/:id']),src='127.0.0.1')),
             Reader('expr /books/:id(\\d+)',open_sub(port,sub_req(port,patterns=['/books/:id(\\d+)']),src='127.0.0.1'))]
    for r in readers: r.start()
    time.sleep(0.5)
    p=Pub(port); pl=[]; hl=[]; c0=h.ticks(); t0=time.time(); n=0
    while time.time()-t0<D:
        n+=1
        st,l,b=p.pub(topic(n),data=f'ts={time.time()} seq={n}'); pl.append(l)
        if n%5==0: hl.append(healthz(port))
        time.sleep(max(0,t0+n/R-time.time()))
    pubcpu=(h.ticks()-c0)/100; el=time.time()-t0
    time.sleep(3)
    print(f'published {n} (L={L}) in {el:.1f}s; hub cpu {pubcpu:.1f}s ({pubcpu/el*100:.0f}%); publish {pct(pl)}; healthz {pct(hl)}; mem {h.mem()}')
    for r in readers: r.stop=True; print('  ',r.summary())
finally: h.stop()
