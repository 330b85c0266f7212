#!/usr/bin/env python3
"""Replays nine findings of issue 18 (hostile input) against a Tandem binary.

Usage: python3 scripts/replay-findings.py --bin PATH [--only 2,3,...]

Starts the given `tandem serve` (fresh data directory; a fresh PostgreSQL
database for findings 11, 21 and 22), performs each attack and prints one line
per finding:

    finding N: ATTACK SUCCEEDED (vulnerable) -- evidence
    finding N: defended -- evidence

Works against the current binary and against the one of commit 2cafaa0 (which
serves /metrics on the main port, ignores TANDEM_METRICS_ADDR and accepts
TANDEM_ADMIN_EMAILS). Standard library only; SQL through the `psql` CLI.
Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth).
"""

import argparse
import http.client
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

PG_HOST = "127.0.0.1"
PG_PORT = "5432"
PG_USER = "postgres"
ALL_FINDINGS = [2, 3, 9, 11, 14, 18, 19, 21, 22]
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def log(msg):
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- HTTP


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Client:
    """A cookie-keeping client like the web app (JSON, session cookie,
    same-origin `Origin` on writes); optionally bound to a source address."""

    def __init__(self, host, port, source=None, timeout=30):
        self.host, self.port, self.source, self.timeout = host, port, source, timeout
        self.cookies = {}

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(
            self.host, self.port, timeout=self.timeout,
            source_address=(self.source, 0) if self.source else None)
        try:
            hdrs = {"Accept": "application/json", "Connection": "close"}
            if body is not None:
                hdrs["Content-Type"] = "application/json"
                body = json.dumps(body).encode() if not isinstance(body, bytes) else body
            if method not in ("GET", "HEAD", "OPTIONS"):
                hdrs["Origin"] = f"http://{self.host}:{self.port}"
            if self.cookies:
                hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            hdrs.update(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            res = conn.getresponse()
            data = res.read()
            for value in res.headers.get_all("Set-Cookie") or []:
                pair = value.split(";", 1)[0]
                if "=" in pair:
                    k, v = pair.split("=", 1)
                    if v:
                        self.cookies[k.strip()] = v.strip()
                    else:
                        self.cookies.pop(k.strip(), None)
            return Response(res.status, res.headers, data)
        finally:
            conn.close()


def new_password():
    return "Zq7-" + secrets.token_hex(8) + "-vX!"


def register(client, email=None, password=None, name="Repro"):
    email = email or f"u{secrets.token_hex(6)}@example.org"
    password = password or new_password()
    res = client.request("POST", "/api/auth/register",
                         {"email": email, "password": password, "display_name": name})
    return email, password, res


def signed_up(client):
    """Registers a fresh account on `client` (which keeps its cookie) and
    returns (email, password, user id); a refused sign-up makes the finding
    inconclusive."""
    email, password, res = register(client)
    if res.status != 201:
        raise RuntimeError(f"registration failed: {res.status} {res.body[:200]!r}")
    return email, password, (res.json() or {}).get("id", "")


def histogram(statuses):
    """{status: count}, in status order."""
    return dict(sorted(Counter(statuses).items(), key=lambda kv: str(kv[0])))


# ------------------------------------------------------------------------- server


class ServerFailed(Exception):
    pass


class Server:
    """One `tandem serve` process with a fresh data directory."""

    def __init__(self, binary, extra_env=None, nofile=None, name="server"):
        self.binary = os.path.abspath(binary)
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"tandem-repro-{name}-")
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TANDEM_", "DATABASE_", "REDIS_", "AWS_", "AI_", "TURN_",
                                    "STUN_", "ARCHIVE_", "CRON_", "UPLOADS_", "OPENAI_",
                                    "ASSET_PREFIX", "RUST_LOG"))}
        env.update({
            "TANDEM_ADDR": "127.0.0.1:0",
            "TANDEM_DATA_DIR": self.data,
            "TANDEM_TURN_LISTEN": "off",
            "ARCHIVE_SCHEDULE": "off",
            "TANDEM_LOG_FORMAT": "pretty",
            "RUST_LOG": "warn",
        })
        env.update(extra_env or {})
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        preexec = None
        if nofile is not None:
            def preexec():
                _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(nofile, hard), hard))
        self.out = open(self.stdout_path, "wb")
        self.err = open(self.stderr_path, "wb")
        # cwd = the temp dir: no project .env is picked up.
        self.proc = subprocess.Popen([self.binary, "serve"], cwd=self.dir, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, preexec_fn=preexec)
        self.host, self.port, self.metrics_port = None, None, None

    def stderr_tail(self, n=3):
        try:
            with open(self.stderr_path, "rb") as f:
                lines = [l for l in f.read().decode(errors="replace").splitlines() if l.strip()]
            return " | ".join(lines[-n:])
        except OSError:
            return ""

    def wait_ready(self, deadline_s=90):
        deadline = time.time() + deadline_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"exited with status {self.proc.returncode}: {self.stderr_tail()}")
            with open(self.stdout_path, "rb") as f:
                text = f.read().decode(errors="replace")
            m = re.search(r"is serving http://([0-9.]+):(\d+)", text)
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                mm = re.search(r"Metrics are served at http://([0-9.]+):(\d+)", text)
                if mm:
                    self.metrics_port = int(mm.group(2))
                break
            time.sleep(0.1)
        else:
            raise ServerFailed("no 'is serving' line before the deadline: " + self.stderr_tail())
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"exited with status {self.proc.returncode}: {self.stderr_tail()}")
            try:
                if Client(self.host, self.port, timeout=2).request("GET", "/healthz").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise ServerFailed("/healthz not ready before the deadline")

    def client(self, source=None, timeout=30):
        return Client(self.host, self.port, source=source, timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.out.close()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def psql(db, sql):
    out = subprocess.run(["psql", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "-d", db,
                          "-v", "ON_ERROR_STOP=1", "-tAc", sql],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"psql: {out.stderr.strip()}")
    return out.stdout.strip()


class PgDatabase:
    def __init__(self):
        self.name = f"tandem_repro_{os.getpid()}_{secrets.token_hex(4)}"
        subprocess.run(["createdb", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, self.name],
                       check=True, capture_output=True, timeout=30)
        self.url = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.name}"

    def drop(self):
        r = subprocess.run(["dropdb", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER, "--force",
                            "--if-exists", self.name], capture_output=True, timeout=60)
        if r.returncode != 0:
            subprocess.run(["dropdb", "-h", PG_HOST, "-p", PG_PORT, "-U", PG_USER,
                            "--if-exists", self.name], capture_output=True, timeout=60)


class Fixtures:
    """Servers shared by several findings, started on first use."""

    def __init__(self, binary):
        self.binary = binary
        self._embedded = None
        self._pg = None
        self._db = None
        self._failed = {}
        self.cleanups = []

    def embedded(self):
        """SQLite server, with TANDEM_METRICS_ADDR (read only by new binaries)."""
        if "embedded" in self._failed:
            raise self._failed["embedded"]
        if self._embedded is None:
            s = Server(self.binary, {"TANDEM_METRICS_ADDR": "127.0.0.1:0"}, name="embedded")
            self.cleanups.append(s.stop)
            try:
                self._embedded = s.wait_ready()
            except ServerFailed as e:
                self._failed["embedded"] = e
                raise
            log(f"embedded server on :{s.port} (metrics port: {s.metrics_port})")
        return self._embedded

    def postgres(self):
        if "pg" in self._failed:
            raise self._failed["pg"]
        if self._pg is None:
            self._db = PgDatabase()
            self.cleanups.append(self._db.drop)
            s = Server(self.binary, {"DATABASE_URL": self._db.url,
                                     "TANDEM_METRICS_ADDR": "127.0.0.1:0"}, name="pg")
            self.cleanups.insert(0, s.stop)  # stop the server before dropping its database
            try:
                self._pg = s.wait_ready()
            except ServerFailed as e:
                self._failed["pg"] = e
                raise
            log(f"postgres server on :{s.port} (database {self._db.name})")
        return self._pg, self._db

    def close(self):
        for fn in self.cleanups:
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                log(f"cleanup: {e}")


def fetch_metrics(server):
    """The /metrics text: on the metrics port if the server has one, else on
    the main port (old binaries). Returns (where, status, text)."""
    if server.metrics_port:
        r = Client(server.host, server.metrics_port, timeout=15).request("GET", "/metrics")
        return f"metrics port {server.metrics_port}", r.status, r.body.decode(errors="replace")
    r = server.client(timeout=15).request("GET", "/metrics")
    return "main port", r.status, r.body.decode(errors="replace")


def is_prometheus(text):
    return "# TYPE" in text or "http_requests_total" in text


# ----------------------------------------------------------------------- findings

VULN = "ATTACK SUCCEEDED (vulnerable)"
DEF = "defended"


def finding_2(fx):
    """Made-up HTTP methods become Prometheus label values."""
    s = fx.embedded()
    n_total, n_threads = 2000, 4
    methods = [f"M{secrets.token_hex(3)}{i:x}" for i in range(n_total)]
    statuses = {}
    lock = threading.Lock()

    def worker(chunk):
        conn = None
        for m in chunk:
            for _ in range(2):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(s.host, s.port, timeout=10)
                    conn.request(m, "/healthz")
                    r = conn.getresponse()
                    r.read()
                    with lock:
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                    if r.will_close:
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException):
                    if conn:
                        conn.close()
                    conn = None
        if conn:
            conn.close()

    threads = [threading.Thread(target=worker, args=(methods[i::n_threads],)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = set(methods)
    where, status, text = fetch_metrics(s)
    if not is_prometheus(text) and s.metrics_port:
        # Fall back to the main port too.
        r = s.client(timeout=15).request("GET", "/metrics")
        if r.status == 200 and is_prometheus(r.body.decode(errors="replace")):
            where, status, text = "main port", r.status, r.body.decode(errors="replace")
    if not is_prometheus(text):
        return None, f"could not read /metrics anywhere (last: {where} -> {status})"
    values = {v for k, v in LABEL_RE.findall(text) if k == "method"}
    ours = values & sent
    series = sum(1 for line in text.splitlines()
                 if line.startswith("http_requests_total{") and any(f'method="{m}"' in line for m in ours)) \
        if ours else 0
    ev = (f"sent {sum(statuses.values())} requests with made-up methods (statuses {dict(sorted(statuses.items()))}); "
          f"/metrics on {where}: {len(ours)} of them are method label values "
          f"(distinct method labels: {len(values)}: {sorted(values)[:12]}{' ...' if len(values) > 12 else ''}), "
          f"{len(text)} bytes")
    if series:
        ev += f", {series} http_requests_total series for them"
    return bool(ours), ev


def finding_3(fx):
    """Half-sent requests exhaust the server's descriptors; /healthz dies."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    s = Server(fx.binary, nofile=1024, name="conns")
    attackers = []
    try:
        s.wait_ready()
        log(f"connection-flood server on :{s.port} (server soft nofile 1024)")
        n_conns, sources = 1100, [f"127.0.0.{i}" for i in range(2, 21)]
        connected = failed = 0
        t0 = time.time()
        for i in range(n_conns):
            if time.time() - t0 > 20:
                break
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((sources[i % len(sources)], 0))
                sock.settimeout(2)
                sock.connect((s.host, s.port))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: " + s.host.encode() + b"\r\nX-Slow: ")
                attackers.append(sock)
                connected += 1
            except OSError:
                sock.close()
                failed += 1
        attack_s = time.time() - t0
        log(f"opened {connected} half-sent connections ({failed} failed) in {attack_s:.1f}s")
        probes = []
        start = time.time()
        for k in range(4):
            target = start + 2.5 * k
            if time.time() < target:
                time.sleep(target - time.time())
            t = time.time()
            try:
                r = Client(s.host, s.port, source="127.0.0.1", timeout=3).request("GET", "/healthz")
                probes.append(f"{r.status} in {time.time() - t:.2f}s")
            except (OSError, http.client.HTTPException) as e:
                probes.append(f"failed ({type(e).__name__}) after {time.time() - t:.1f}s")
        ok = sum(1 for p in probes if p.startswith("200"))
        # How many attacker sockets the server still holds open.
        still_open = 0
        for sock in attackers:
            try:
                sock.setblocking(False)
                sock.recv(1, socket.MSG_PEEK)  # data or EOF: the server answered or closed it
            except BlockingIOError:
                still_open += 1
            except OSError:
                pass
        alive = s.proc.poll() is None
        ev = (f"{connected} half-sent connections from {len(sources)} addresses held "
              f"(failed to connect: {failed}); /healthz probes from 127.0.0.1 (3 s timeout): "
              f"{ok}/{len(probes)} ok [{'; '.join(probes)}]; attacker sockets still open "
              f"after probing: {still_open}; server {'running' if alive else 'exited'}")
        return ok * 2 < len(probes), ev
    finally:
        for sock in attackers:
            try:
                sock.close()
            except OSError:
                pass
        s.stop()


def finding_9(fx):
    """TANDEM_ADMIN_EMAILS gives admin to whoever signs up with the address."""
    s = Server(fx.binary, {"TANDEM_ADMIN_EMAILS": "boss@example.com"}, name="admin")
    try:
        try:
            s.wait_ready(deadline_s=60)
        except ServerFailed as e:
            return False, f"the server refused to start with TANDEM_ADMIN_EMAILS set ({e})"
        c = s.client()
        _, _, res = register(c, email="boss@example.com", name="Not The Boss")
        if res.status != 201:
            return None, f"registration of boss@example.com failed: {res.status} {res.body[:200]!r}"
        me = c.request("GET", "/api/users/me")
        admin_flag = (me.json() or {}).get("admin")
        queues = c.request("GET", "/api/admin/queues")
        runs = c.request("GET", "/api/admin/archive-runs")
        ev = (f"server started with TANDEM_ADMIN_EMAILS=boss@example.com; unverified sign-up as "
              f"boss@example.com -> {res.status}; /api/users/me admin={admin_flag}; "
              f"GET /api/admin/queues -> {queues.status}; GET /api/admin/archive-runs -> {runs.status}")
        return bool(admin_flag) or queues.status == 200 or runs.status == 200, ev
    finally:
        s.stop()


def finding_11(fx):
    """One analytics event with a NUL byte makes PostgreSQL refuse the whole batch."""
    s, db = fx.postgres()
    visitor = str(uuid.uuid4())
    bad_visitor = str(uuid.uuid4())
    conn = http.client.HTTPConnection(s.host, s.port, timeout=15)
    origin = f"http://{s.host}:{s.port}"

    def post(batch):
        body = json.dumps(batch).encode()
        conn.request("POST", "/api/analytics/events", body=body,
                     headers={"Content-Type": "application/json", "Origin": origin})
        r = conn.getresponse()
        r.read()
        return r.status

    good = lambda i: {"type": "pageView", "path": f"/rooms/{i}", "referrer": "https://example.com/"}
    statuses = []
    try:
        # Good events and the bad one within the sink's 500 ms batching window.
        statuses.append(post({"visitorId": visitor, "events": [good(i) for i in range(0, 20)]}))
        bad_status = post({"visitorId": bad_visitor, "events": [
            {"type": "pageView", "path": "/rooms", "referrer": "https://example.com/\u0000x"}]})
        statuses.append(post({"visitorId": visitor, "events": [good(i) for i in range(20, 40)]}))
    finally:
        conn.close()
    accepted_good = sum(20 for st in statuses if st == 202)
    deadline = time.time() + 12
    rows = bad_rows = 0
    table = "page_views"
    while time.time() < deadline:
        rows = int(psql(db.name, f"SELECT count(*) FROM {table} WHERE visitor_id = '{visitor}'"))
        if rows >= 40:
            break
        time.sleep(0.5)
    time.sleep(0.5)
    rows = int(psql(db.name, f"SELECT count(*) FROM {table} WHERE visitor_id = '{visitor}'"))
    bad_rows = int(psql(db.name, f"SELECT count(*) FROM {table} WHERE visitor_id = '{bad_visitor}'"))
    ev = (f"40 good page views (2 requests -> {statuses}) and 1 with a NUL in its referrer "
          f"(-> {bad_status}); rows stored in {table} after waiting: good {rows}/40, bad {bad_rows}")
    if accepted_good < 40:
        return None, ev + " (good events were not all accepted)"
    return rows < 40, ev


def finding_14(fx):
    """A stranger's wrong guesses lock the owner out of their account."""
    s = fx.embedded()
    owner = s.client(source="127.0.0.1")
    email, password, _ = signed_up(owner)
    attacker = s.client(source="127.0.0.5")
    guesses = []
    for _ in range(12):
        guesses.append(attacker.request("POST", "/api/auth/login",
                                        {"email": email, "password": new_password()}).status)
    victim = s.client(source="127.0.0.6")
    r = victim.request("POST", "/api/auth/login", {"email": email, "password": password})
    hist = histogram(guesses)
    ev = (f"12 wrong-password logins from 127.0.0.5 -> {hist}; the owner's correct login from "
          f"127.0.0.6 -> {r.status}")
    if r.status == 429:
        return True, ev
    if r.status == 200:
        return False, ev
    return None, ev + " (unexpected status)"


def finding_18(fx):
    """/metrics is public on the main port, with user ids in its labels."""
    s = fx.embedded()
    c = s.client()
    _, _, user_id = signed_up(c)
    # Reach a per-user limit (ICE servers: 60 a minute) so its key is counted.
    ice = [c.request("GET", "/api/webrtc/ice-servers").status for _ in range(62)]
    r = s.client(timeout=15).request("GET", "/metrics")
    text = r.body.decode(errors="replace")
    public = r.status == 200 and is_prometheus(text)
    uuid_labels = sorted({f'{k}="{v}"' for k, v in LABEL_RE.findall(text) if UUID_RE.search(v)}) if public else []
    ev = (f"GET /metrics on the main port -> {r.status}"
          f"{' with Prometheus metrics (' + str(len(text)) + ' bytes)' if public else ''}; "
          f"after 62 ICE-server requests by user {user_id} ({ice.count(429)} x 429): ")
    if public:
        ev += (f"{len(uuid_labels)} label values hold a UUID"
               f"{' (' + ', '.join(uuid_labels[:3]) + ')' if uuid_labels else ''}"
               f"{'; the user id itself is a label' if user_id and user_id in text else ''}")
    else:
        ev += "(main port serves no metrics)"
        if s.metrics_port:
            _, st, mtext = fetch_metrics(s)
            n = len({v for _, v in LABEL_RE.findall(mtext) if UUID_RE.search(v)})
            ev += f"; on the separate metrics port ({st}) {n} label values hold a UUID"
    return public, ev


def finding_19(fx):
    """DELETE /api/users/me lets a signed-in session guess the password without limit."""
    s = fx.embedded()
    c = s.client()
    signed_up(c)
    statuses = [c.request("DELETE", "/api/users/me", {"password": new_password()}).status
                for _ in range(30)]
    still = c.request("GET", "/api/users/me").status
    hist = histogram(statuses)
    first_429 = statuses.index(429) + 1 if 429 in statuses else None
    ev = (f"30 DELETE /api/users/me with wrong passwords -> {hist}"
          f"{'; first 429 at attempt ' + str(first_429) if first_429 else ''}; "
          f"account afterwards: GET /api/users/me -> {still}")
    if 204 in statuses:
        return None, ev + " (a wrong password deleted the account?)"
    return 429 not in statuses, ev


def finding_21(fx):
    """A NUL byte in the login e-mail is a 500 on PostgreSQL."""
    s, _ = fx.postgres()
    r = s.client().request("POST", "/api/auth/login",
                           {"email": "a\u0000@x.com", "password": "whatever-guess-123"})
    ev = f"POST /api/auth/login with email \"a\\u0000@x.com\" (PostgreSQL) -> {r.status}"
    return r.status >= 500, ev


def finding_22(fx):
    """The 20-upcoming-rooms limit is check-then-insert: concurrent creations pass it."""
    s, db = fx.postgres()
    c = s.client()
    _, _, user_id = signed_up(c)
    n = 40
    base = datetime.now(timezone.utc) + timedelta(days=300)
    barrier = threading.Barrier(n)
    results = [None] * n

    def create(i):
        start = base + timedelta(minutes=i)
        body = {"title": f"Room {i}", "subject": "Maths", "description": "",
                "starts_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ends_at": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "capacity": 4}
        client = Client(s.host, s.port, timeout=30)
        client.cookies = dict(c.cookies)
        try:
            barrier.wait(timeout=20)
        except threading.BrokenBarrierError:
            pass
        try:
            results[i] = client.request("POST", "/api/study-sessions", body).status
        except (OSError, http.client.HTTPException) as e:
            results[i] = type(e).__name__

    threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = sum(1 for st in results if isinstance(st, int) and 200 <= st < 300)
    hist = histogram(results)
    rows = psql(db.name, f"SELECT count(*) FROM study_sessions WHERE owner_id = '{user_id}' "
                         f"AND status = 'scheduled'") if user_id else "?"
    ev = (f"{n} concurrent POST /api/study-sessions by one user (limit 20 upcoming) -> {hist}; "
          f"{ok} created; rows in study_sessions for the owner: {rows}")
    if ok == 0:
        return None, ev + " (nothing created: check the request)"
    return ok > 20, ev


FINDINGS = {2: finding_2, 3: finding_3, 9: finding_9, 11: finding_11, 14: finding_14,
            18: finding_18, 19: finding_19, 21: finding_21, 22: finding_22}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="path of the tandem binary")
    ap.add_argument("--only", help="comma-separated finding numbers (default: all)")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"not an executable: {args.bin}")
    wanted = ALL_FINDINGS
    if args.only:
        wanted = [int(x) for x in args.only.split(",") if x.strip()]
        unknown = [w for w in wanted if w not in FINDINGS]
        if unknown:
            sys.exit(f"unknown findings {unknown}; known: {ALL_FINDINGS}")
    started = time.time()
    print(f"# {os.path.abspath(args.bin)}", flush=True)
    fx = Fixtures(args.bin)
    summary = {}
    try:
        for n in wanted:
            t = time.time()
            log(f"finding {n} ...")
            try:
                vulnerable, evidence = FINDINGS[n](fx)
            except Exception as e:  # noqa: BLE001
                vulnerable, evidence = None, f"{type(e).__name__}: {e}"
            verdict = {True: VULN, False: DEF, None: "INCONCLUSIVE (could not run the attack)"}[vulnerable]
            summary[n] = verdict
            print(f"finding {n}: {verdict} -- {evidence} [{time.time() - t:.1f}s]", flush=True)
    finally:
        fx.close()
    print(f"# done in {time.time() - started:.0f}s: "
          f"{sum(1 for v in summary.values() if v == VULN)} vulnerable, "
          f"{sum(1 for v in summary.values() if v == DEF)} defended, "
          f"{sum(1 for v in summary.values() if v not in (VULN, DEF))} inconclusive", flush=True)


if __name__ == "__main__":
    main()
