# Load test for `qwgpu serve`: time to first token and aggregate decode.
import http.client, json, sys, threading, time
port = int(sys.argv[1]); out = {}
def stream(prompt, max_tokens, res, i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}})
    t0 = time.perf_counter(); c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse(); first = None; n = 0; usage = None
    for line in r:
        line = line.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]": continue
        d = json.loads(line[6:])
        if d.get("choices") and d["choices"][0].get("text") and first is None: first = time.perf_counter() - t0
        if d.get("usage"): usage = d["usage"]
    res[i] = (first, time.perf_counter() - t0, usage)
def run(n, max_tokens, plen):
    res = [None]*n
    ths = [threading.Thread(target=stream, args=(f"w{i} {time.time()} " + " hello"*plen, max_tokens, res, i)) for i in range(n)]
    t0 = time.perf_counter(); [t.start() for t in ths]; [t.join() for t in ths]; wall = time.perf_counter() - t0
    toks = sum(r[2]["completion_tokens"] for r in res)
    return wall, toks, res
for _ in range(2): run(1, 8, 16)  # warm-up
tt = []
for k in range(5):
    w, t, res = run(1, 1, 508); tt.append(res[0][0]); print("ttft512", res[0][2], "%.1f ms" % (res[0][0]*1e3), flush=True)
print("TTFT 512-token prompt ms: min %.1f median %.1f" % (min(tt)*1e3, sorted(tt)[2]*1e3), flush=True)
for n in [int(x) for x in sys.argv[2].split(",")]:
    w, t, res = run(n, 128, 16)
    print("clients %d: %d tokens in %.3f s = %.1f tok/s aggregate (ttft max %.1f ms)" % (n, t, w, t/w, max(r[0] for r in res)*1e3), flush=True)
