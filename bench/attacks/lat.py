# legit subscriber reader: records delivery latency from data "ts=<float> seq=<n>"
import threading,time,socket,re
class Reader(threading.Thread):
    def __init__(self,name,sock):
        super().__init__(daemon=True); self.name_=name; self.s=sock; self.lat=[]; self.seqs=[]; self.resets=0; self.buf=b''; self.stop=False; self.raw=b''
    def run(self):
        self.s.settimeout(1)
        while not self.stop:
            try: d=self.s.recv(65536)
            except socket.timeout: continue
            except OSError: break
            if not d: break
            now=time.time(); self.buf+=d
            while b'\n\n' in self.buf:
                fr,self.buf=self.buf.split(b'\n\n',1)
                if b'event: reset' in fr: self.resets+=1
                m=re.search(rb'data: ts=([0-9.]+) seq=(\d+)',fr)
                if m: self.lat.append(now-float(m.group(1))); self.seqs.append(int(m.group(2)))
    def summary(self):
        l=sorted(self.lat); n=len(l)
        if not n: return f'{self.name_}: 0 events, resets={self.resets}'
        ordered = all(b>a for a,b in zip(self.seqs,self.seqs[1:]))
        return f'{self.name_}: n={n} p50={l[n//2]*1000:.1f}ms p99={l[int(n*0.99)]*1000:.1f}ms max={l[-1]*1000:.1f}ms resets={self.resets} ordered/nodup={ordered}'
def pct(xs):
    l=sorted(xs); n=len(l)
    return f'p50={l[n//2]*1000:.1f}ms p99={l[min(n-1,int(n*0.99))]*1000:.1f}ms max={l[-1]*1000:.1f}ms' if n else 'none'
