import hmac,hashlib,base64,json,time,sys,os,socket,subprocess,urllib.parse,http.client,signal
SECRET='attack secret attack secret 32 bytes!!'
import os
BIN=os.environ.get('HUB_BIN','target/release/sse-topics')
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b'=').decode()
def tok(actions=("publish",), topics=None, exp=3600):
    h={"alg":"HS256","typ":"at+jwt"}
    c={"exp":int(time.time())+exp,"aud":"urn:hub","authorization_details":[{"type":"https://mercure.rocks/authorization-detail","actions":list(actions),"topics":topics or [{"match":"*"}]}]}
    s=b64(json.dumps(h).encode())+'.'+b64(json.dumps(c).encode())
    return s+'.'+b64(hmac.new(SECRET.encode(),s.encode(),hashlib.sha256).digest())
PUBTOK=tok()
class Hub:
    def __init__(self,port,*extra,log='hub.log'):
        self.port=port
        args=[BIN,'--port',str(port),'--jwt-secret',SECRET,'--jwt-audience','urn:hub','--max-streams-per-ip','10000',*extra]
        self.p=subprocess.Popen(args,stdout=open(log,'w'),stderr=subprocess.STDOUT,preexec_fn=lambda: __import__('resource').setrlimit(__import__('resource').RLIMIT_NOFILE,(20000,20000)))
        open(f'hub{port}.pid','w').write(str(self.p.pid))
        for _ in range(100):
            try: socket.create_connection(('127.0.0.1',port),timeout=1).close(); break
            except OSError: time.sleep(0.05)
        self.pid=self.p.pid
    def ticks(self):
        f=open(f'/proc/{self.pid}/stat').read().rsplit(')',1)[1].split(); return int(f[11])+int(f[12])
    def mem(self):
        d={l.split(':')[0]:l.split(':')[1].strip() for l in open(f'/proc/{self.pid}/status')}
        return int(d['VmRSS'].split()[0])//1024, int(d['VmHWM'].split()[0])//1024
    def threads(self): return len(os.listdir(f'/proc/{self.pid}/task'))
    def stop(self):
        try: self.p.send_signal(signal.SIGKILL); self.p.wait(5)
        except Exception: pass
class Pub:
    def __init__(self,port,token=PUBTOK):
        self.port=port; self.token=token; self.c=None
    def pub(self,topics,data='x',**kw):
        if isinstance(topics,str): topics=[topics]
        body=urllib.parse.urlencode([('topic',t) for t in topics]+[('data',data)]+list(kw.items())).encode()
        t=time.time()
        for attempt in range(2):
            try:
                if self.c is None: self.c=http.client.HTTPConnection('127.0.0.1',self.port,timeout=60)
                self.c.request('POST','/.well-known/mercure',body,{'Authorization':'Bearer '+self.token,'Content-Type':'application/x-www-form-urlencoded'})
                r=self.c.getresponse(); b=r.read(); return r.status,time.time()-t,b
            except Exception as e:
                self.c=None; err=e
        return None,time.time()-t,str(err).encode()
def healthz(port):
    t=time.time()
    c=http.client.HTTPConnection('127.0.0.1',port,timeout=60); c.request('GET','/healthz'); r=c.getresponse(); r.read(); c.close()
    return time.time()-t
def sub_req(port,exact=(),patterns=(),extra='',token=None):
    q='&'.join(['match='+urllib.parse.quote(p,safe='') for p in exact]+['match_urlpattern='+urllib.parse.quote(p,safe='') for p in patterns])+extra
    h=f"GET /.well-known/mercure?{q} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if token: h+=f"Authorization: Bearer {token}\r\n"
    return (h+"\r\n").encode()
def open_sub(port,req,src='127.0.0.1',rcvbuf=None,timeout=10):
    s=socket.socket()
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,rcvbuf)
    s.bind((src,0)); s.settimeout(timeout); s.connect(('127.0.0.1',port)); s.sendall(req)
    return s
def src_ip(i): return f'127.0.{(i//250)%250+1 if False else 0}.{i%250+2}'
