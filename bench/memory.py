"""Peak RSS of one `python -m monitor poll` against a loopback feed under the 10 MB cap.

Usage: python bench/memory.py 50k | 9mb   (50,000 small entries, or one 8.8 MB entry)
Prints the largest peak RSS among the finished child processes (getrusage
RUSAGE_CHILDREN ru_maxrss), which covers the poll and its parser workers.
"""

import resource
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from feedgen import rss, write_config
which = sys.argv[1]
if which == "50k":
    body = rss([{"title": f"Item {i}", "link": f"https://x.example/{i}", "guid": f"g{i}", "text": "w"} for i in range(50_000)])
else:
    body = rss([{"title": "Big", "link": "https://x.example/big", "guid": "big", "text": "<p>" + "word " * (8_800_000 // 5) + "</p>"}])
print(which, len(body) / 1e6, "MB", flush=True)
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "application/rss+xml"); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
srv = ThreadingHTTPServer(("127.0.0.1", 0), H); threading.Thread(target=srv.serve_forever, daemon=True).start()
tmp = Path(tempfile.mkdtemp(prefix="memory-bench-"))
cfg = write_config(tmp, [f"http://127.0.0.1:{srv.server_port}/feed"])
r = subprocess.run([sys.executable, "-m", "monitor", "--config", str(cfg), "poll"], cwd=tmp, capture_output=True, text=True)
print(r.returncode, r.stdout[-300:], r.stderr[-300:])
print("peak RSS MB (largest child)", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
