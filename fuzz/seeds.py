#!/usr/bin/env python3
"""Writes the hand-made seed corpus of every fuzz target into corpus/<target>/.

Run from fuzz/: `python3 seeds.py`. The seeds are small and readable: RFC 6455 §5.7
example frames, fragmented messages, close frames, valid and invalid handshakes.
"""
import os, struct

KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def mask(key, data):
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def frame(op, payload=b"", fin=True, key=None, rsv=0, form=None):
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    n = len(payload)
    mbit = 0x80 if key else 0
    if form is None:
        form = 0 if n < 126 else (1 if n <= 0xFFFF else 2)
    if form == 0:
        head = bytes([b0, mbit | n])
    elif form == 1:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if key:
        return head + key + mask(key, payload)
    return head + payload


def close(code, reason=b""):
    return struct.pack(">H", code) + reason


def write(target, name, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def frame_seeds(key):
    """Frames as a peer sends them: masked with `key` for a server, else unmasked."""
    f = lambda *a, **k: frame(*a, key=key, **k)
    return {
        "rfc-hello": f(0x1, b"Hello"),
        "rfc-fragmented": f(0x1, b"Hel", fin=False) + f(0x0, b"lo"),
        "rfc-ping-pong": f(0x9, b"Hello") + f(0xA, b"Hello"),
        "rfc-256-binary": f(0x2, bytes(range(256))),
        "binary-64k-form": f(0x2, b"x" * 300, form=2),
        "fragments-with-ping": f(0x1, "κό".encode(), fin=False) + f(0x9, b"p")
        + f(0x0, "σμε".encode(), fin=False) + f(0x0, b"!"),
        "close-1000": f(0x1, b"bye") + f(0x8, close(1000, b"done")),
        "close-empty": f(0x8),
        "close-bad-code": f(0x8, close(1005)),
        "close-one-byte": f(0x8, b"\x03"),
        "bad-utf8-midfragment": f(0x1, b"ok\xce", fin=False) + f(0x0, b"\x41"),
        "rsv1": f(0x1, b"x", rsv=4),
        "reserved-opcode": f(0x3, b""),
        "continuation-first": f(0x0, b"x"),
        "control-too-long": f(0x9, b"p" * 126),
        "fragmented-control": f(0x9, b"p", fin=False),
        "big-message-fragments": f(0x2, b"a" * 1800, fin=False)
        + f(0x0, b"b" * 1800, fin=False) + f(0x0, b"c" * 1800),
        "frame-too-large": f(0x2, b"z" * 2100),
        "length-overflow": bytes([0x82, (0x80 if key else 0) | 127, 0x80, 0, 0, 0, 0, 0, 0, 1]) + (key or b""),
        "wrong-masking": frame(0x1, b"hi", key=None if key else KEY),
    }


def main():
    # frame_header: raw headers.
    for name, data in frame_seeds(KEY).items():
        write("frame_header", name, data[:14])
    write("frame_header", "unmasked-hello", frame(0x1, b"Hello")[:7])
    write("frame_header", "empty", b"")
    write("frame_header", "one-byte", b"\x81")
    write("frame_header", "len126-partial", b"\x82\xfe\x01")

    # Connection targets: [flags][ctl_len][ctl bytes][wire bytes] (see src/conn.rs).
    for target, key in (("server_connection", KEY), ("client_connection", None)):
        for i, (name, wire) in enumerate(frame_seeds(key).items()):
            flags = i & 0x0F  # vary delivery mode, input path and timers
            write(target, name, bytes([flags, 0]) + wire)
        wire = frame_seeds(key)["fragments-with-ping"] + frame_seeds(key)["close-1000"]
        # trickle: one byte per chunk for the first bytes, with sends interleaved
        ctl = bytes([0x00] * 8 + [0x80 | 3, 0xA0 | 5, 0xE0 | 2, 0xC0 | 8])
        write(target, "trickle-with-actions", bytes([0x01, len(ctl)]) + ctl + wire)
        write(target, "close-first", bytes([0x02, 1, 0xC0 | 31]) + frame_seeds(key)["close-1000"])
        write(target, "timers", bytes([0x0C, 4, 0xE0 | 31, 0xE0 | 31, 0xE0 | 31, 0xE0 | 31]))
        # echo through the Outbox (action 3), whole messages and streamed fragments
        echo_wire = frame_seeds(key)["fragments-with-ping"] + frame_seeds(key)["rfc-256-binary"] \
            + frame(0xA, b"pong", key=key) + frame_seeds(key)["close-1000"]
        write(target, "echo-messages", bytes([0x00, 3, 0x60 | 27, 0x60 | 20, 0x00]) + echo_wire)
        # hand the buffers back (action 2) between and inside frames
        ctl = bytes([0x40 | 5, 0x40 | 0, 0x40 | 9, 0x40 | 20, 0x40 | 26, 0x40 | 27])
        write(target, "buffer-handback", bytes([0x02, len(ctl)]) + ctl + echo_wire)
        write(target, "echo-streaming", bytes([0x01, 3, 0x60 | 5, 0x00 | 3, 0x80 | 26]) + echo_wire)
        # output mode 3 (flags 0x60): action 1 stalls the transport, the Write left
        # pending while the next chunk is read, then one piece through transmit()
        ctl = bytes([0x60 | 20, 0x20 | 21, 0x20 | 16, 0x00 | 31])
        write(target, "stall-echo", bytes([0x62, len(ctl)]) + ctl + echo_wire)
        # end of input (flags 0x80) with the replies of the last step still queued:
        # they come as Write before Close
        hello = frame_seeds(key)["rfc-hello"] + frame(0x9, b"ping", key=key)
        write(target, "stall-then-eof", bytes([0xE0, 2, 0x60 | 0, 0x20 | 30]) + hello)
        write(target, "eof-after-message", bytes([0x80, 1, 0x60 | 31]) + hello)

    # Handshakes: [split byte][bytes]; the split byte drives chunk sizes.
    req = (b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")
    hs = {
        "rfc-request": req,
        "rfc-request-with-frame": req + frame(0x1, b"Hello", key=KEY),
        "version-8": req.replace(b"Version: 13", b"Version: 8"),
        "post": req.replace(b"GET", b"POST"),
        "http10": req.replace(b"HTTP/1.1", b"HTTP/1.0"),
        "no-key": req.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
        "bad-key": req.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"dGhlIHNhbXBsZSBub25jZR=="),
        "dup-host": req.replace(b"Host:", b"Host: a\r\nHost:"),
        "body": req.replace(b"\r\n\r\n", b"\r\nContent-Length: 3\r\n\r\nabc"),
        "absolute-uri": req.replace(b"/chat?room=1", b"ws://server.example.com/chat"),
        "lf-only": req.replace(b"\r\n", b"\n"),
        "leading-empty-lines": b"\r\n\r\n" + req,
        "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    }
    for i, (name, data) in enumerate(hs.items()):
        write("server_handshake", name, bytes([i * 37 & 0xFF]) + data)

    acc = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    resp = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + acc + b"\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
    hc = {
        "rfc-response": resp,
        "rfc-response-with-frame": resp + frame(0x1, b"Hello"),
        "no-protocol": resp.replace(b"Sec-WebSocket-Protocol: chat\r\n", b""),
        "unoffered-protocol": resp.replace(b": chat\r\n", b": nope\r\n"),
        "two-protocols": resp.replace(b": chat\r\n", b": chat, superchat\r\n"),
        "bad-accept": resp.replace(acc, b"x" * 28),
        "extensions": resp.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
        "403": b"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\ngo away",
        "426": b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n",
        "http10-101": resp.replace(b"HTTP/1.1", b"HTTP/1.0"),
        "garbage": b"SSH-2.0-OpenSSH_9.6\r\n",
    }
    for i, (name, data) in enumerate(hc.items()):
        write("client_handshake", name, bytes([i * 37 & 0xFF]) + data)

    # structured: [flags][damage][at lo][at hi] then items, read as src/structured.rs
    # reads them (every frame ends with [damage m][key x4]).
    K = bytes([0x00]) + KEY  # no frame damage, the RFC key
    def data_msg(op, size_idx, seed, cuts=(), pings=()):
        out = bytes([op, size_idx, seed])
        for c in cuts:
            out += struct.pack("<H", c)
        n = len(cuts) + 1
        for i in range(n):
            out += K
            if i < n - 1 and op & 0x80:
                out += bytes([pings[i] if i < len(pings) else 1]) + K
        return out
    st = {
        "text": data_msg(0x00, 4, 0),
        "binary-300": data_msg(0x10, 9, 5),
        "fragmented-text-with-pings": data_msg(0x80 | 0x60, 10, 1, cuts=(7, 300, 700), pings=(3, 0, 5)),
        "fragmented-binary": data_msg(0x10 | 0x20, 12, 9, cuts=(1000,)),
        "text-cut-inside-chars": data_msg(0x40, 5, 2, cuts=(1, 3)),
        "ping-pong-close": bytes([4, 5]) + K + bytes([6, 3]) + K + bytes([7, 2, 0, 4]) + K,
        "close-empty": bytes([7, 0]) + K,
        "close-one-byte": bytes([7, 1]) + K,
        "close-1005": bytes([7, 2, 5, 0]) + K,
        "close-bad-reason": bytes([7, 7, 0, 10]) + K,
        "stray-continuation": bytes([8]) + K,
        "reserved-opcode": bytes([9, 3]) + K,
        "bad-utf8": bytes([10, 30, 10, 2]) + K,
        "frame-too-large": bytes([0x1B]) + K,
        "message-too-large": bytes([0x0B]) + K * 3,
        "rsv1": bytes([0x00, 4, 0, 0xF0]) + KEY,
        "unmasked": bytes([0x00, 4, 0, 0xF2]) + KEY,
        "length-overflow": bytes([0x10, 4, 0, 0xF7]) + KEY,
        "non-minimal-length": bytes([0x10, 3, 0, 0xF5]) + KEY,
    }
    for i, (name, items) in enumerate(st.items()):
        flags = [0x00, 0x01, 0x02, 0x07, 0x0D, 0x0E][i % 6]
        write("structured", name, bytes([flags, 2, 0, 0]) + items)
    # damaged conversations: truncated, and a bit flipped
    conv = data_msg(0x80 | 0x40, 9, 3, cuts=(10, 200), pings=(2, 4)) + bytes([4, 2]) + K + bytes([7, 2, 0, 3]) + K
    write("structured", "truncated", bytes([0x05, 0x00, 0x90, 0x01]) + conv)
    write("structured", "bit-flip", bytes([0x06, 0x61, 0x21, 0x00]) + conv)
    write("structured", "whole-conversation", bytes([0x01, 0x02, 0x00, 0x00]) + conv)
    # the client role (damage byte bit 4): the same items, frames unmasked
    write("structured", "client-conversation", bytes([0x01, 0x12, 0x00, 0x00]) + conv)
    write("structured", "client-truncated", bytes([0x06, 0x10, 0x30, 0x00]) + conv)
    write("structured", "client-masked-frame", bytes([0x00, 0x12, 0, 0]) + bytes([0x00, 4, 0, 0xF2]) + KEY)
    write("structured", "client-close-1005", bytes([0x02, 0x12, 0, 0]) + bytes([7, 2, 5, 0]) + K)


def u16(n):
    return struct.pack("<H", n)


def deflate_seeds():
    """permessage-deflate: roundtrips, hostile compressed frames, negotiation."""
    # deflate_roundtrip: [agreement][levels][flags][chunk seed] then items
    # [op][len][payload] (+ a u16 cut per extra fragment).
    W15, W8 = 0x1C | 0xE0, 0x00  # both windows 15 bits; both 8 bits
    json = b'{"id":1,"user":"u1","text":"hello again"},'
    text = "κόσμε hello ☃ 𝄞 wörld ".encode()
    def item(op, payload, cuts=()):
        return bytes([op, len(payload)]) + payload + b"".join(u16(c) for c in cuts)
    rt = {
        # level 1 both ways, context takeover, every message compressed
        "takeover-json": (W15, 0x11, 0x00, 2, item(0x00, json) + item(0xA1, json) + item(0xC0, json)),
        # no context takeover, level 1: hybi's own compressor on whole messages
        "no-takeover-quick": (W15 | 3, 0x11, 0x20, 1, item(0x80, json) + item(0x91, text) + item(0x00, b"short")),
        "window-8-level-9": (W8, 0x99, 0x00, 3, item(0xB0, text) + item(0xB1, json)),
        "store-level-0": (W15, 0x00, 0x00, 0, item(0x90, json) + item(0x01, b"")),
        "mixed-windows": (0x5D, 0x61, 0x08, 2, item(0xC0, json) + item(0xC1, json)),
        "fragments-with-pings": (W15, 0x11, 0x00, 1, item(0xAE, text, (5, 300, 3000)) + item(0x8B, json, (40,))),
        "fragments-no-takeover": (W15 | 3, 0x11, 0x00, 2, item(0xA6, json, (1, 2, 9000)) + item(0x03, b"", (0,))),
        "binary-noise": (W15 | 1, 0x51, 0x00, 3, item(0xE0, bytes(range(200, 256))) + item(0xF1, b"\x01\x02" * 20)),
        "invalid-utf8-is-binary": (W15, 0x11, 0x00, 1, item(0x90, b"ok\xff\xfe" * 10)),
        "lent-codecs": (W15 | 2, 0x11, 0x04, 2, item(0xA0, json) + item(0xA1, json) + item(0xA0, text) + item(0x06, json, (3, 30, 60))),
        "lent-codecs-no-takeover": (W15 | 3, 0x31, 0x04, 1, item(0xA0, json) + item(0xA1, json) + item(0x0A, json, (10,))),
        "streaming": (W15, 0x11, 0x03, 2, item(0xD0, json) + item(0xD1, text) + item(0x0C, json, (7, 8))),
        "threshold-high": (W15, 0x11, 0x38 | 0xC0, 0, item(0x00, json) + item(0xB0, json)),
    }
    for name, (a, lv, fl, ch, items) in rt.items():
        write("deflate_roundtrip", name, bytes([a, lv, fl, ch]) + items)

    # deflate_connection: [agreement][flags][client config][damage][at: u16] then items.
    def msg(op, size_idx, how=0, pos=None, cuts=()):
        b = bytes([op, size_idx, how])
        if how & 3 == 1:
            b += u16(pos or 0)
        return b + b"".join(u16(c) for c in cuts)
    plain = lambda size_idx, how=0, op=0x07: bytes([op, size_idx, how])
    ping = lambda n: bytes([0x04, n])
    conn = {
        "text-small": (W15, 0x00, 0x01, 0, 0, msg(0x00, 3) + msg(0x00, 4)),
        "binary-pattern": (W15, 0x02, 0x01, 0, 0, msg(0x20, 5, 2) + msg(0x20, 8, 2)),
        "limit-exactly": (W15, 0x08, 0x01, 0, 0, msg(0x20, 10, 2)),
        "limit-exactly-streaming": (W15, 0x09, 0x01, 0, 0, msg(0x20, 10, 2)),
        "one-over-limit": (W15, 0x08, 0x01, 0, 0, msg(0x20, 11, 2)),
        "bomb-1m": (W15, 0x04, 0x01, 0, 0, msg(0x20, 14, 2)),
        "bomb-2m-streaming": (W15 | 3, 0x0D, 0x09, 0, 0, msg(0x00, 15, 0)),
        "bad-utf8-compressed": (W15, 0x04, 0x01, 0, 0, msg(0x00, 4, 1, pos=3)),
        "bad-utf8-streaming": (W15, 0x05, 0x01, 0, 0, msg(0x00, 8, 1, pos=200)),
        "fragments-with-pings": (W15, 0x06, 0x01, 0, 0, msg(0xC0, 8, 4, cuts=(5, 100, 4000)) + ping(3)),
        "fragments-streaming": (W15, 0x07, 0x01, 0, 0, msg(0x80, 9, 6, cuts=(0, 65535))),
        "noise-incompressible": (W15 | 3, 0x0C, 0x09, 0, 0, msg(0x20, 9, 3)),
        "window-8": (W8, 0x00, 0x01, 0, 0, msg(0x00, 5) + msg(0x40, 5, 0, cuts=(700,))),
        "level-9-takeover": (W15, 0x02, 0x09, 0, 0, msg(0x00, 5) + msg(0x00, 5) + msg(0x20, 4, 2)),
        "below-threshold": (W15, 0x00, 0x41, 0, 0, msg(0x00, 3) + msg(0x00, 5)),
        "garbage-rsv1": (W15, 0x00, 0x01, 0, 0, bytes([0x05, 6]) + b"\xff\xff\x00\x00\x12\x34"),
        "garbage-empty-final-block": (W15, 0x00, 0x01, 0, 0, bytes([0x05, 1, 0x03])),
        "rsv1-on-ping": (W15, 0x00, 0x01, 0, 0, msg(0x00, 3) + bytes([0x06])),
        "rsv1-on-continuation": (W15, 0x01, 0x01, 0, 0, bytes([0x0E])),
        "rsv2": (W15, 0x00, 0x01, 0, 0, bytes([0x16])),
        "close-after-messages": (W15, 0x00, 0x01, 0, 0, msg(0x00, 4) + ping(5) + bytes([0x1E])),
        "plain-between-compressed": (W15, 0x00, 0x01, 0, 0, msg(0x00, 5) + plain(3) + msg(0x00, 5)),
        "plain-too-large": (W15, 0x00, 0x01, 0, 0, plain(7, 2, 0x27)),
        "bit-flip": (W15, 0x00, 0x01, 0x22, 40, msg(0x00, 5) + msg(0x00, 5)),
        "bit-flip-streaming": (W15, 0x05, 0x01, 0x42, 300, msg(0x00, 8) + msg(0x00, 5)),
        "truncated": (W15, 0x00, 0x01, 0x01, 30, msg(0x00, 5) + msg(0x00, 5)),
        "zero-copy": (W15, 0x0A, 0x01, 0, 0, msg(0x40, 8, 4, cuts=(1000,)) + ping(0)),
    }
    for name, (a, fl, cfg, dmg, at, items) in conn.items():
        write("deflate_connection", name, bytes([a, fl, cfg, dmg]) + u16(at) + items)

    # deflate_negotiation: [server config][client config] then values, one a line.
    neg = {
        "chrome": (0xFC, 0xFC, ["permessage-deflate; client_max_window_bits"]),
        "firefox": (0xFC, 0xFC, ["permessage-deflate"]),
        "no-takeover": (0xFF, 0xFF, ["permessage-deflate; server_no_context_takeover; client_no_context_takeover"]),
        "windows": (0x5D, 0x61, ["permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"]),
        "quoted": (0xFC, 0x7C, ['permessage-deflate; server_max_window_bits="12"; client_max_window_bits']),
        "several-offers": (0x30, 0xFC, ["x-webkit-deflate-frame, permessage-deflate; foo",
                                        "permessage-deflate; server_max_window_bits=8, permessage-deflate"]),
        "bad-values": (0xFC, 0xFC, ["permessage-deflate; server_max_window_bits=08",
                                    "permessage-deflate; client_max_window_bits=16",
                                    "permessage-deflate; server_no_context_takeover=1"]),
        "duplicate": (0xFC, 0xFC, ["permessage-deflate; client_max_window_bits; client_max_window_bits=10"]),
        "syntax": (0xFC, 0xFC, ['permessage-deflate; a="b', ", ,", "permessage-deflate;;", "\t"]),
        "answer-not-offered": (0xFC, 0x1C, ["permessage-deflate; client_max_window_bits=15"]),
        "empty": (0x00, 0x00, [""]),
    }
    for name, (sc, cc, values) in neg.items():
        write("deflate_negotiation", name, bytes([sc, cc]) + "\n".join(values).encode())


if __name__ == "__main__":
    main()
    deflate_seeds()
