"""A fault-injecting TCP proxy for network-partition tests (python3 standard library only).

What it owns:
  * Netsplit: one selectors loop (one daemon thread) serving a set of proxies. A proxy listens
    on a free loopback port in front of one real port of one cluster node (its *destination*
    node). Every accepted connection is tagged with its *source* node: the connecting end is
    127.0.0.1:sport; the proxy finds the inode of that socket in /proc/net/tcp (the row whose
    local address is 127.0.0.1:sport and whose remote address is the proxy's own port) and then
    the gregor process (among the pids the source callback returns at accept time, so a
    restarted node is recognised by its new pid) that holds `socket:[inode]` in /proc/PID/fd.
    A connection from any other process (the test itself, its clients, kcat) has source None:
    a client, never cut.
  * Per-pair cuts: cut(a, b) black-holes traffic between nodes a and b in both directions
    (connections from a to a proxy in front of b, and from b to a proxy in front of a);
    isolate(x) cuts x from every other node; heal() removes every cut. A link from a node to
    itself, and every client link, is never cut.

Semantics of a cut link, chosen to look like a real partition (no RST, no FIN: the peers have
to notice by their own timeouts):
  * an established connection stops forwarding in both directions: the proxy neither reads
    from nor writes to either socket (bytes already read stay buffered), so the kernel buffers
    fill and the senders block or time out;
  * a new connection over a cut link is accepted (the connect succeeds, since the
    proxy's listener answers for the node) but the proxy does not connect to the destination
    until the link is healed; until then nothing is read;
  * heal() resumes every held connection: buffered and queued bytes are forwarded (like TCP
    retransmission after a partition ends), pending connections are connected upstream. A
    peer that closed its end while cut is seen (EOF) after its queued bytes, as with TCP.
  * a connection whose other end closes or resets is closed on both sides (half-close is
    passed on with shutdown(SHUT_WR)).

Counters (counters()): accepted connections per (source, destination), bytes forwarded per
(source, destination), and the number of connections currently held by a cut.

Bounded: the loop wakes at least every 50 ms; stop() closes every socket and joins the
thread (the Cluster that owns a Netsplit stops it on exit).
"""
import errno
import os
import selectors
import socket
import threading
import time

HOST = "127.0.0.1"
_BUF = 65536


def _hex_addr(port):
    """/proc/net/tcp's spelling of 127.0.0.1:port (little-endian address, big-endian port)."""
    return "0100007F:%04X" % port


def socket_inode(local_port, remote_port):
    """The inode of the loopback TCP socket 127.0.0.1:local_port -> 127.0.0.1:remote_port, or
    None. Looks in /proc/net/tcp and (IPv4-mapped) /proc/net/tcp6."""
    want_l4, want_r4 = _hex_addr(local_port), _hex_addr(remote_port)
    mapped = "0000000000000000FFFF00000100007F:"
    want_l6 = mapped + "%04X" % local_port
    want_r6 = mapped + "%04X" % remote_port
    for path, wl, wr in (("/proc/net/tcp", want_l4, want_r4),
                         ("/proc/net/tcp6", want_l6, want_r6)):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if len(cols) > 9 and cols[1] == wl and cols[2] == wr:
                        return int(cols[9])
        except OSError:
            continue
    return None


def pid_with_socket(inode, pids):
    """The first pid in pids that has an fd `socket:[inode]`, or None."""
    target = "socket:[%d]" % inode
    for pid in pids:
        d = "/proc/%d/fd" % pid
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for fd in names:
            try:
                if os.readlink(d + "/" + fd) == target:
                    return pid
            except OSError:
                continue
    return None


class _Conn:
    """One proxied connection: down = the accepted socket (from src), up = to the real port
    (None until connected). buf[sock] holds bytes read from sock not yet written to its peer."""

    def __init__(self, proxy, down, src):
        self.proxy = proxy
        self.src = src
        self.dst = proxy.node
        self.down = down
        self.up = None
        self.connecting = False
        self.buf = {}
        self.eof = set()     # sockets that returned EOF (their peer got SHUT_WR after flush)
        self.shut = set()    # sockets we have shut down for writing
        self.closed = False
        self.registered = {}  # sock -> events currently registered

    def peer(self, s):
        return self.up if s is self.down else self.down


class _Proxy:
    def __init__(self, node, target_port, listener):
        self.node = node
        self.target_port = target_port
        self.listener = listener
        self.port = listener.getsockname()[1]


class Netsplit:
    """Proxies in front of cluster nodes' ports, with per-pair link cuts.

        net = Netsplit(lambda: {pid: node_id, ...})
        p = net.add_proxy(node_id, real_port)    -> the proxy's port
        net.start()
        net.cut(1, 2); net.isolate(3); net.heal(); net.counters(); net.links()
        net.stop()

    node_pids: a callable returning {pid: node_id} of the running nodes, asked on every
    accept (so restarts are followed)."""

    def __init__(self, node_pids):
        self.node_pids = node_pids
        self.proxies = []
        self.lock = threading.Lock()   # guards cuts, conns and the counters
        self.cuts = set()              # frozenset({a, b})
        self.conns = []
        self.accepted = {}             # (src, dst) -> count
        self.bytes = {}                # (src, dst) -> bytes forwarded src->dst
        self.unidentified = 0
        self.sel = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, ("wake", None))
        self.thread = None
        self.running = False
        self.error = None

    # -- configuration ---------------------------------------------------------------------
    def add_proxy(self, node, target_port):
        """A listener on a free loopback port forwarding to 127.0.0.1:target_port of node.
        Returns the proxy's port. Call before start()."""
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((HOST, 0))
        ls.listen(128)
        ls.setblocking(False)
        p = _Proxy(node, target_port, ls)
        self.proxies.append(p)
        self.sel.register(ls, selectors.EVENT_READ, ("listen", p))
        return p.port

    def start(self):
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="netsplit", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout=5.0):
        """Ends the loop and closes every listener and connection."""
        if self.thread is not None:
            self.running = False
            self._wake()
            self.thread.join(timeout)
            self.thread = None
        with self.lock:
            for c in self.conns:
                self._close(c, unregister=False)
            self.conns = []
        for p in self.proxies:
            p.listener.close()
        self.proxies = []

    # -- faults ----------------------------------------------------------------------------
    def cut(self, a, b):
        """Black-holes traffic between nodes a and b (both directions)."""
        if a != b:
            with self.lock:
                self.cuts.add(frozenset((a, b)))
            self._wake()

    def isolate(self, x, nodes=None):
        """Cuts x from every other node in nodes (default: every node with a proxy)."""
        if nodes is None:
            nodes = set(p.node for p in self.proxies)
        with self.lock:
            for n in nodes:
                if n != x:
                    self.cuts.add(frozenset((x, n)))
        self._wake()

    def heal(self):
        """Removes every cut; held connections resume forwarding."""
        with self.lock:
            self.cuts.clear()
        self._wake()

    def is_cut(self, src, dst):
        return src is not None and src != dst and frozenset((src, dst)) in self.cuts

    def counters(self):
        """{"accepted": {(src, dst): n}, "bytes": {(src, dst): n}, "held": n open connections
        over a cut link, "open": n, "unidentified": n}. src None = a client."""
        with self.lock:
            held = sum(1 for c in self.conns if not c.closed and self.is_cut(c.src, c.dst))
            return {"accepted": dict(self.accepted), "bytes": dict(self.bytes), "held": held,
                    "open": sum(1 for c in self.conns if not c.closed),
                    "unidentified": self.unidentified}

    def links(self):
        """{(src, dst): number of open connections}, src None = client."""
        with self.lock:
            out = {}
            for c in self.conns:
                if not c.closed:
                    out[(c.src, c.dst)] = out.get((c.src, c.dst), 0) + 1
            return out

    # -- loop ------------------------------------------------------------------------------
    def _wake(self):
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def _identify(self, sport, proxy_port):
        """The node id whose process owns the connecting socket, or None (a client)."""
        for attempt in range(3):
            inode = socket_inode(sport, proxy_port)
            if inode:
                pids = self.node_pids()
                pid = pid_with_socket(inode, list(pids))
                return pids.get(pid) if pid is not None else None
            time.sleep(0.001)
        self.unidentified += 1
        return None

    def _loop(self):
        try:
            while self.running:
                with self.lock:
                    self._update_interest()
                for key, ev in self.sel.select(0.05):
                    kind, obj = key.data
                    if kind == "wake":
                        try:
                            self.wake_r.recv(4096)
                        except OSError:
                            pass
                    elif kind == "listen":
                        self._accept(obj)
                    else:
                        with self.lock:
                            self._service(obj, key.fileobj, ev)
        except Exception as e:  # surfaced by the owner (Cluster) on exit
            self.error = e
            raise
        finally:
            self.sel.close()
            self.wake_r.close()
            self.wake_w.close()

    def _accept(self, proxy):
        while True:
            try:
                s, addr = proxy.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            src = self._identify(addr[1], proxy.port)
            c = _Conn(proxy, s, src)
            with self.lock:
                self.conns.append(c)
                k = (src, proxy.node)
                self.accepted[k] = self.accepted.get(k, 0) + 1

    def _connect_up(self, c):
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        up.setblocking(False)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rc = up.connect_ex((HOST, c.proxy.target_port))
        if rc not in (0, errno.EINPROGRESS):
            up.close()
            self._close(c)
            return
        c.up = up
        c.connecting = rc != 0

    def _want(self, c, s):
        """The events socket s of c should wait for now (lock held)."""
        if c.closed or self.is_cut(c.src, c.dst):
            return 0
        ev = 0
        if s is c.up and c.connecting:
            return selectors.EVENT_WRITE
        p = c.peer(s)
        if s not in c.eof and not c.buf.get(s) and p is not None and not \
                (p is c.up and c.connecting):
            ev |= selectors.EVENT_READ
        if p is not None and c.buf.get(p):
            ev |= selectors.EVENT_WRITE
        return ev

    def _update_interest(self):
        for c in self.conns:
            if c.closed:
                continue
            if c.up is None and not self.is_cut(c.src, c.dst):
                self._connect_up(c)
                if c.closed:
                    continue
            for s in (c.down, c.up):
                if s is None:
                    continue
                want = self._want(c, s)
                have = c.registered.get(s, 0)
                if want == have:
                    continue
                if have and want:
                    self.sel.modify(s, want, ("conn", c))
                elif want:
                    self.sel.register(s, want, ("conn", c))
                else:
                    self.sel.unregister(s)
                c.registered[s] = want
        self.conns = [c for c in self.conns if not c.closed]

    def _service(self, c, s, ev):
        if c.closed or self.is_cut(c.src, c.dst):
            return
        if s is c.up and c.connecting:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self._close(c)
            else:
                c.connecting = False
            return
        p = c.peer(s)
        if ev & selectors.EVENT_READ and not c.buf.get(s):
            try:
                data = s.recv(_BUF)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self._close(c)
                return
            if data == b"":
                c.eof.add(s)
            elif data:
                c.buf[s] = data
        if ev & selectors.EVENT_WRITE and c.buf.get(p):
            self._flush(c, p, s)
        if c.buf.get(s):
            self._flush(c, s, p)
        for e in list(c.eof):
            q = c.peer(e)
            if not c.buf.get(e) and q not in c.shut and q is not None:
                try:
                    q.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                c.shut.add(q)
        if len(c.eof) == 2 and not c.buf.get(c.down) and not c.buf.get(c.up):
            self._close(c)

    def _flush(self, c, frm, to):
        """Writes what was read from frm to its peer to (lock held)."""
        data = c.buf.get(frm)
        try:
            n = to.send(data)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(c)
            return
        c.buf[frm] = data[n:]
        k = (c.src, c.dst) if frm is c.down else (c.dst, c.src)
        self.bytes[k] = self.bytes.get(k, 0) + n

    def _close(self, c, unregister=True):
        if c.closed:
            return
        c.closed = True
        for s in (c.down, c.up):
            if s is None:
                continue
            if unregister and c.registered.get(s):
                try:
                    self.sel.unregister(s)
                except (KeyError, ValueError):
                    pass
            try:
                s.close()
            except OSError:
                pass
