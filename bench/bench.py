#!/usr/bin/env python3
"""Benchmark helpers for bench/run: generate a brand mailbox, run the obvious alternative
(imaplib + email + psycopg), and measure IDLE latency (single replies and bursts). Not part of the product."""
import argparse, base64, bisect, csv, email, email.policy, imaplib, json, os, random, socket, subprocess, sys, threading, time

BRAND = "partners@brand.example"


def msg_id(kind, i):
    return f"{kind}-{i}@bench.example"


def generate(args):
    rnd = random.Random(42)
    n = args.n
    creators = max(50, n // 4)
    maildir = args.maildir
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    with open(os.path.join(args.out, "creators.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "platform", "handle", "email", "manager_email"])
        for c in range(creators):
            w.writerow([f"Creator {c}", "tiktok", f"creator_{c}", f"c{c}@creators.example", f"m{c}@talent.example"])
    with open(os.path.join(args.out, "outreach.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["message_id", "campaign", "platform", "handle", "to", "subject", "sent_at"])
        for c in range(creators):
            w.writerow([f"<outreach-{c}@brand.example>", "Bench", "tiktok", f"creator_{c}", f"c{c}@creators.example", f"Bench x {c}", "2026-11-01"])
    quote = "\r\n".join("> " + "Lorem ipsum dolor sit amet, consectetur adipiscing elit." for _ in range(30))
    attachment = base64.encodebytes(os.urandom(50_000)).decode().replace("\n", "\r\n")
    big_attachment = base64.encodebytes(os.urandom(2_000_000)).decode().replace("\n", "\r\n")
    kinds = (["reply"] * 55 + ["followup"] * 10 + ["manager"] * 5 + ["auto"] * 8 + ["bounce"] * 4
             + ["decline"] * 6 + ["stranger"] * 6 + ["newsletter"] * 6)
    for i in range(n):
        c = rnd.randrange(creators)
        out = f"outreach-{c}@brand.example"
        kind = rnd.choice(kinds)
        frm = f"c{c}@creators.example"
        headers = [f"To: Brand <{BRAND}>", f"Date: Mon, 23 Nov 2026 10:{i % 60:02d}:00 +0000",
                   f"Message-ID: <{msg_id(kind, i)}>", "MIME-Version: 1.0"]
        body = "Hi! Yes, I'd love to do this. What are the next steps?"
        subject = f"Re: Bench x {c}"
        if kind == "followup":
            body = "Following up: any news on the brief?"
            headers += [f"In-Reply-To: <{out}>", f"References: <{out}> <reply-{c}@creators.example>"]
        elif kind == "manager":
            frm = f"m{c}@talent.example"
            body = "Hello, I manage this creator. Rates attached."
            headers += [f"In-Reply-To: <{out}>", f"References: <{out}>"]
        elif kind == "auto":
            subject = f"Automatic reply: Bench x {c}"
            body = "I am out of office until Monday."
            headers += ["Auto-Submitted: auto-replied", f"In-Reply-To: <{out}>"]
        elif kind == "bounce":
            frm = "MAILER-DAEMON@mx.creators.example"
            subject = "Undelivered Mail Returned to Sender"
        elif kind == "decline":
            body = "Thanks, but I'm not interested."
            headers += [f"In-Reply-To: <{out}>", f"References: <{out}>"]
        elif kind == "stranger":
            frm = f"stranger{i}@elsewhere.example"
            subject = "Collab?"
            body = "Hi, I run an agency, want to work together?"
        elif kind == "newsletter":
            frm = "news@newsletter.example"
            subject = "This week in creator marketing"
            headers += ["List-Id: <weekly.newsletter.example>", "List-Unsubscribe: <mailto:u@newsletter.example>"]
        else:
            headers += [f"In-Reply-To: <{out}>", f"References: <{out}>"]
        headers = [f"From: <{frm}>", f"Subject: {subject}"] + headers
        text = f"{body}\r\n\r\nOn Sun, 22 Nov 2026 at 09:00, Brand <{BRAND}> wrote:\r\n{quote}\r\n"
        roll = rnd.random()
        if kind == "bounce":
            b = "bnd"
            payload = (f"Content-Type: multipart/report; report-type=delivery-status; boundary={b}\r\n\r\n"
                       f"--{b}\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
                       f"--{b}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
                       f"Final-Recipient: rfc822; c{c}@creators.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                       f"--{b}\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{out}>\r\n--{b}--\r\n")
        elif roll < 0.03:
            b = "mix"
            att = big_attachment if roll < 0.003 else attachment
            payload = (f"Content-Type: multipart/mixed; boundary={b}\r\n\r\n--{b}\r\n"
                       f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--{b}\r\n"
                       f"Content-Type: application/pdf; name=rates.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                       f"{att}\r\n--{b}--\r\n")
        elif roll < 0.35:
            b = "alt"
            html = "<div>" + body + "</div><blockquote>" + quote.replace("\r\n", "<br>") + "</blockquote>"
            payload = (f"Content-Type: multipart/alternative; boundary={b}\r\n\r\n--{b}\r\n"
                       f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--{b}\r\n"
                       f"Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>{html}</body></html>\r\n--{b}--\r\n")
        else:
            payload = f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}"
        raw = "\r\n".join(headers) + "\r\n" + payload
        # An existing mailbox: delivered messages live in cur/, named as Dovecot's own
        # delivery names them (time, microseconds, pid, host; physical and CRLF sizes).
        # Names counting up in lockstep collide in Dovecot's filename hash and made a
        # 100,000-message folder take seconds per session for reasons no real one has.
        data = raw.encode()
        name = (f"{1700000000 + i // 40}.M{rnd.randrange(10**6)}P{rnd.randrange(1000, 99999)}"
                f".mx1,S={len(data)},W={len(data)}:2,")
        with open(os.path.join(maildir, "cur", name), "wb") as f:
            f.write(data)


AUTO_PREFIXES = ("auto:", "automatic reply:", "out of office")

ALT_SCHEMA = """
CREATE TABLE IF NOT EXISTS alt_outreach (message_id text PRIMARY KEY, handle text);
CREATE TABLE IF NOT EXISTS alt_inbound (uid bigint PRIMARY KEY, message_id text, sender text,
  subject text, body text, kind text, outreach text);
CREATE TABLE IF NOT EXISTS alt_collab (id serial PRIMARY KEY, handle text UNIQUE, created_at timestamptz DEFAULT now());
"""


def alternative(args):
    """What an operator would write in an afternoon: one message at a time."""
    import psycopg
    db = psycopg.connect(args.db, autocommit=False)
    db.execute(ALT_SCHEMA)
    with open(os.path.join(args.out, "outreach.csv")) as f:
        rows = [(r["message_id"].strip("<>"), r["handle"]) for r in csv.DictReader(f)]
    with db.cursor() as cur:
        cur.executemany("INSERT INTO alt_outreach VALUES (%s, %s) ON CONFLICT DO NOTHING", rows)
    db.commit()
    outreach = dict(rows)
    started = time.time()
    imap = imaplib.IMAP4("127.0.0.1", args.port)
    imap.login(BRAND, args.password)
    imap.select(args.folder, readonly=True)
    _, data = imap.uid("SEARCH", None, "ALL")
    uids = data[0].split()
    done = 0
    for k in range(0, len(uids), 100):
        chunk = b",".join(uids[k:k + 100])
        _, fetched = imap.uid("FETCH", chunk, "(UID BODY.PEEK[])")
        for item in fetched:
            if not isinstance(item, tuple):
                continue
            uid = int(item[0].split(b"UID ")[1].split()[0])
            msg = email.message_from_bytes(item[1], policy=email.policy.default)
            subject = str(msg.get("Subject", ""))
            auto = msg.get("Auto-Submitted", "no").lower() != "no" or subject.lower().startswith(AUTO_PREFIXES)
            ids = (str(msg.get("In-Reply-To", "")) + " " + str(msg.get("References", ""))).split()
            match = next((i.strip("<>") for i in ids if i.strip("<>") in outreach), None)
            part = msg.get_body(preferencelist=("plain", "html"))
            body = part.get_content() if part else ""
            kind = "auto_reply" if auto else ("reply" if match else "unmatched")
            db.execute("INSERT INTO alt_inbound VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                       (uid, msg.get("Message-ID"), str(msg.get("From")), subject, body.replace("\x00", ""), kind, match))
            if kind == "reply":
                db.execute("INSERT INTO alt_collab (handle) VALUES (%s) ON CONFLICT DO NOTHING", (outreach[match],))
            db.commit()
            done += 1
    imap.logout()
    print(f"{done} {time.time() - started:.3f}")


def ingest(args):
    """Starts collabd (the command given) once connected to its database, waits until it
    has committed N messages, and prints collabd's pid, the seconds since its start, its
    peak RSS (KiB) and CPU ticks. Polling uses one connection and a one-row table, and
    starts before collabd: measuring must not take CPU from what it measures. collabd is
    left running for the latency run."""
    import psycopg
    db = psycopg.connect(args.db, autocommit=True)
    with open(args.log, "wb") as log:
        start = time.time()
        proc = subprocess.Popen(args.command, stdout=log, stderr=subprocess.STDOUT)
    deadline = start + args.timeout
    while True:
        try:
            (done,) = db.execute("SELECT coalesce(sum(processed), 0) FROM mailbox_sync").fetchone()
        except psycopg.errors.UndefinedTable:  # collabd has not migrated yet
            done = 0
        if done >= args.n:
            break
        if proc.poll() is not None:
            sys.exit(f"collabd exited with {proc.returncode} after {done} messages; see {args.log}")
        if time.time() > deadline:
            sys.exit(f"only {done} of {args.n} messages committed within {args.timeout} s")
        time.sleep(0.02)
    took = time.time() - start
    with open(f"/proc/{proc.pid}/status") as f:
        hwm = next(line.split()[1] for line in f if line.startswith("VmHWM"))
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    print(f"{proc.pid} {took:.3f} {hwm} {ticks}")


class IdleWatch(threading.Thread):
    """A bare IDLE client beside collabd: when the server itself announces each new message
    (`* n EXISTS`). That is the floor no client can beat; what collabd adds is above it."""

    def __init__(self, port, password, folder):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lines = self.sock.makefile("rb")
        self.lines.readline()  # greeting
        self.command(b"a LOGIN " + BRAND.encode() + b" " + password.encode())
        self.command(b"b EXAMINE " + folder.encode())
        self.sock.sendall(b"c IDLE\r\n")
        if not self.lines.readline().startswith(b"+"):
            sys.exit("the server refused IDLE")
        self.times = []
        self.start()

    def command(self, line):
        tag = line.split(b" ", 1)[0]
        self.sock.sendall(line + b"\r\n")
        while True:
            reply = self.lines.readline()
            if reply.startswith(tag + b" "):
                if not reply.startswith(tag + b" OK"):
                    sys.exit(f"IMAP: {reply!r}")
                return

    def run(self):
        for line in self.lines:
            if line.rstrip().endswith(b" EXISTS"):
                self.times.append(time.perf_counter())

    def announced_after(self, t0):
        """When the first announcement after t0 arrived."""
        deadline = time.perf_counter() + 10
        while time.perf_counter() < deadline:
            i = bisect.bisect_left(self.times, t0)
            if i < len(self.times):
                return self.times[i]
            time.sleep(0.001)
        sys.exit("the server announced no new message within 10 s")


def q(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def reply_raw(c, mid):
    return (f"From: <c{c}@creators.example>\r\nTo: <{BRAND}>\r\nSubject: Re: Bench\r\n"
            f"Message-ID: <{mid}>\r\nIn-Reply-To: <outreach-{c}@brand.example>\r\n"
            f"Content-Type: text/plain\r\n\r\nYes please!\r\n").encode()


def burst(args):
    """APPENDs replies in pairs 100 ms apart (the second often arrives while collabd runs a
    command for the first) and times each reply until its row is committed."""
    import psycopg
    db = psycopg.connect(args.db, autocommit=True)
    imap = imaplib.IMAP4("127.0.0.1", args.port)
    imap.login(BRAND, args.password)
    rnd = random.Random(11)
    samples = []
    for i in range(args.count):
        time.sleep(rnd.uniform(0.2, 1.0))
        sent = []
        for k in range(2):
            if k:
                time.sleep(max(0.0, sent[0][1] + 0.1 - time.perf_counter()))
            c = rnd.randrange(args.creators)
            mid = f"burst-{i}-{k}-{time.time_ns()}@creators.example"
            t0 = time.perf_counter()
            imap.append(args.folder, None, None, reply_raw(c, mid))
            sent.append((mid, t0))
        while sent:
            for mid, t0 in list(sent):
                if db.execute("SELECT 1 FROM inbound_messages WHERE mailbox = 'bench' AND dedupe_key = %s",
                              (mid,)).fetchone():
                    samples.append((time.perf_counter() - t0) * 1000)
                    sent.remove((mid, t0))
                elif time.perf_counter() - t0 > 60:
                    sys.exit(f"message {mid} not committed within 60 s")
            time.sleep(0.001)
    imap.logout()
    print(" ".join(f"{x:.1f}" for x in (q(samples, 0.5), q(samples, 0.99), max(samples))))


def latency(args):
    """APPENDs replies one at a time and times each until its row is committed, and until
    a bare IDLE client beside collabd heard of it."""
    import psycopg
    db = psycopg.connect(args.db, autocommit=True)
    watch = IdleWatch(args.port, args.password, args.folder)
    imap = imaplib.IMAP4("127.0.0.1", args.port)
    imap.login(BRAND, args.password)
    rnd = random.Random(7)
    samples, floors = [], []
    for i in range(args.count):
        c = rnd.randrange(args.creators)
        mid = f"latency-{i}-{time.time_ns()}@creators.example"
        time.sleep(rnd.uniform(0.02, 0.2))
        t0 = time.perf_counter()
        imap.append(args.folder, None, None, reply_raw(c, mid))
        while True:
            if db.execute("SELECT 1 FROM inbound_messages WHERE mailbox = 'bench' AND dedupe_key = %s",
                          (mid,)).fetchone():
                break
            if time.perf_counter() - t0 > 10:
                sys.exit(f"message {mid} not committed within 10 s")
            time.sleep(0.001)
        done = time.perf_counter()
        samples.append((done - t0) * 1000)
        floors.append((watch.announced_after(t0) - t0) * 1000)
    imap.logout()
    own = [a - b for a, b in zip(samples, floors)]
    print(" ".join(f"{x:.1f}" for x in (
        q(samples, 0.5), q(samples, 0.95), q(samples, 0.99), max(samples),
        q(floors, 0.5), q(floors, 0.99), q(own, 0.5), q(own, 0.99))))


def fleet_connect(args):
    """Starts collabd (the command given), polls `collabctl --json status` until every one
    of the M mailboxes is connected, and prints collabd's pid and the seconds it took.
    collabd is left running for the rest of the fleet run."""
    with open(args.log, "wb") as log:
        start = time.time()
        proc = subprocess.Popen(args.command, stdout=log, stderr=subprocess.STDOUT)
    deadline = start + args.timeout
    connected = 0
    while True:
        time.sleep(0.25)
        if proc.poll() is not None:
            sys.exit(f"collabd exited with {proc.returncode}; see {args.log}")
        if time.time() > deadline:
            sys.exit(f"only {connected} of {args.m} mailboxes connected within {args.timeout} s")
        r = subprocess.run([args.collabctl, "--socket", args.socket, "--json", "status"],
                           capture_output=True)
        if r.returncode != 0:
            continue  # the admin socket is not up yet
        boxes = json.loads(r.stdout)["mailboxes"]
        connected = sum(1 for b in boxes if b["connected"])
        if len(boxes) == args.m and connected == args.m:
            break
    print(f"{proc.pid} {time.time() - start:.3f}")


def fleet_latency(args):
    """Delivers one reply to each of the M mailboxes (straight into maildir/new, as a local
    delivery agent does; Dovecot announces it to the IDLE session) in one burst, and times
    each until its row is committed in inbound_messages. Prints p50, p99 and max (ms), and
    the seconds from the last delivery to the last commit."""
    import psycopg
    db = psycopg.connect(args.db, autocommit=True)
    sent = {}
    for i in range(args.m):
        user = f"mb{i}@brand.example"
        maildir = os.path.join(args.mail, user, "maildir")
        mid = f"fleet-{i}-{time.time_ns()}@creators.example"
        name = f"{time.time_ns()}.fleet{i}.bench"
        tmp = os.path.join(maildir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(reply_raw(i, mid).replace(BRAND.encode(), user.encode()))
        os.chown(tmp, args.uid, args.gid)
        t0 = time.perf_counter()
        os.rename(tmp, os.path.join(maildir, "new", name))
        sent[mid] = t0
    last_sent = time.perf_counter()
    samples = []
    deadline = last_sent + args.timeout
    while sent:
        # By key, not by id: ids are taken at INSERT, so rows commit out of id order.
        rows = db.execute("SELECT dedupe_key FROM inbound_messages WHERE dedupe_key = ANY(%s)",
                          (list(sent),)).fetchall()
        now = time.perf_counter()
        for (key,) in rows:
            samples.append((now - sent.pop(key)) * 1000)
        if now > deadline:
            sys.exit(f"{len(sent)} of {args.m} replies not committed within {args.timeout} s")
        time.sleep(0.005)
    done = time.perf_counter()
    print(" ".join(f"{x:.1f}" for x in (q(samples, 0.5), q(samples, 0.99), max(samples)))
          + f" {done - last_sent:.3f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate"); g.add_argument("n", type=int); g.add_argument("maildir"); g.add_argument("out")
    a = sub.add_parser("alternative")
    for sp in (a,):
        sp.add_argument("--port", type=int); sp.add_argument("--password"); sp.add_argument("--folder", default="INBOX")
        sp.add_argument("--db"); sp.add_argument("--out")
    l = sub.add_parser("latency")
    l.add_argument("--port", type=int); l.add_argument("--password"); l.add_argument("--folder", default="INBOX")
    l.add_argument("--db"); l.add_argument("--count", type=int, default=200); l.add_argument("--creators", type=int)
    b = sub.add_parser("burst")
    b.add_argument("--port", type=int); b.add_argument("--password"); b.add_argument("--folder", default="INBOX")
    b.add_argument("--db"); b.add_argument("--count", type=int, default=100); b.add_argument("--creators", type=int)
    w = sub.add_parser("ingest")
    w.add_argument("--db"); w.add_argument("--n", type=int); w.add_argument("--log")
    w.add_argument("--timeout", type=float, default=3600); w.add_argument("command", nargs="+")
    fc = sub.add_parser("fleet-connect")
    fc.add_argument("--m", type=int); fc.add_argument("--log"); fc.add_argument("--collabctl")
    fc.add_argument("--socket"); fc.add_argument("--timeout", type=float, default=600)
    fc.add_argument("command", nargs="+")
    fl = sub.add_parser("fleet-latency")
    fl.add_argument("--m", type=int); fl.add_argument("--mail"); fl.add_argument("--db")
    fl.add_argument("--uid", type=int); fl.add_argument("--gid", type=int)
    fl.add_argument("--timeout", type=float, default=120)
    args = p.parse_args()
    {"generate": generate, "alternative": alternative, "latency": latency, "burst": burst,
     "ingest": ingest, "fleet-connect": fleet_connect, "fleet-latency": fleet_latency}[args.cmd](args)
